"""python -m export.serve under pressure and at its edges: a full queue (503 + Retry-After), a
request past --timeout-s (504), a client that goes away mid-stream (its row is freed), SIGTERM
(stop accepting, finish the requests in flight, exit 0), and bad start-up (one error line,
exit 2)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT
from lm_helpers import export_random_lm
from serve_helpers import Service, next_event, no_torch_path, open_stream, read_events

LONG = 200_000  # tokens: a stream that would run for a minute if nobody stopped it


@pytest.fixture(scope="module")
def lm_bundle(tmp_path_factory) -> str:
    return export_random_lm(
        tmp_path_factory.mktemp("life_lm"), hidden_size=24, embedding_size=12
    ).bundle


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_full_queue_a_timeout_and_a_client_that_goes_away(tmp_path, lm_bundle):
    service = Service.start(
        tmp_path, ["--bundle", f"lm={lm_bundle}", "--max-queue", "2", "--timeout-s", "2"]
    )
    try:
        # a long stream holds the model's worker
        connection, response = open_stream(
            service, {"prompt": "the", "max_tokens": LONG, "stream": True}
        )
        assert next_event(response)[0] == "message"
        # two requests wait in the queue, which holds two rows ...
        waiting = []
        threads = [
            threading.Thread(
                target=lambda: waiting.append(
                    service.post("/v1/generate", {"prompt": "o", "max_tokens": 3})
                )
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: service.metric("serve_queue_rows", model="lm") == 2)
        # ... so a third is turned away at once, and told when to come back
        status, headers, answer = service.post("/v1/generate", {"prompt": "o"})
        assert status == 503 and headers["retry-after"] == "1"
        assert "the queue holds 2 (--max-queue)" in answer["error"]
        # the two waiting ones get 504 past --timeout-s, and leave the queue
        for thread in threads:
            thread.join(10)
        assert [w[0] for w in waiting] == [504, 504]
        assert "did not finish within 2 s" in waiting[0][2]["error"]
        assert service.metric("serve_queue_rows", model="lm") == 0
        # the stream's client goes away: its row is freed at once, not after LONG tokens
        connection.close()
        started = time.monotonic()
        status, _, answer = service.post(
            "/v1/generate", {"prompt": "o", "max_tokens": 5, "seed": 1}
        )
        assert status == 200 and len(answer["text"]) == 5
        assert time.monotonic() - started < 2
        assert service.metric("serve_requests_total", route="/v1/generate", status="504") == 2
        assert service.get("/health")[0] == 200
    finally:
        assert service.stop() == 0


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(tmp_path, lm_bundle):
    service = Service.start(tmp_path, ["--bundle", f"lm={lm_bundle}"])
    body = {"prompt": "the", "max_tokens": 8000, "temperature": 0, "stream": True}
    connection, response = open_stream(service, body)
    first = next_event(response)
    service.process.send_signal(15)
    # no new connection is accepted while the stream goes on
    time.sleep(0.3)
    with pytest.raises(OSError):
        service.get("/health")
    assert service.process.poll() is None
    events = [first, *read_events(response)]
    connection.close()
    assert events[-1][0] == "done"
    assert len(events[-1][1]["text"]) == 8000
    assert "".join(data["text"] for _, data in events[:-1]) == events[-1][1]["text"]
    assert service.process.wait(30) == 0


def run_service(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": no_torch_path(tmp_path / "fake_site"), "PATH": ""}
    return subprocess.run(
        [sys.executable, "-m", "export.serve", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def edited_bundle(source: str, directory, kind: str) -> str:
    target = directory / f"{kind}-bundle"
    shutil.copytree(source, target)
    manifest = json.loads((target / "model.json").read_text(encoding="utf-8"))
    manifest["kind"] = kind
    (target / "model.json").write_text(json.dumps(manifest), encoding="utf-8")
    return str(target)


def test_bad_start_up_is_one_error_line_and_exit_2(tmp_path, lm_bundle):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cases = [
        (["--bundle", lm_bundle, "--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
        (["--bundle", str(tmp_path / "missing")], "missing: no such bundle directory"),
        (["--bundle", edited_bundle(lm_bundle, tmp_path, "weird")], "unknown bundle kind 'weird'"),
        (
            ["--bundle", edited_bundle(lm_bundle, tmp_path, "classification")],
            "lacks graphs.classifier; not a classification bundle",
        ),
        (["--bundle", f"a={lm_bundle}", "--bundle", f"a={lm_bundle}"], "two bundles are named 'a'"),
        (["--bundle", lm_bundle, "--max-batch-size", "0"], "--max-batch-size must be at least 1"),
    ]
    try:
        for args, message in cases:
            result = run_service(args, tmp_path)
            assert result.returncode == 2, (args, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    finally:
        taken.close()
