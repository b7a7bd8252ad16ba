"""Running ``python -m export.serve`` for the service tests: a real process on a loopback
ephemeral port, in a Python where ``import torch`` fails (the service must not need it), and a
small HTTP client over http.client."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT

LISTENING = re.compile(r"on http://([^:]+):(\d+) ")


def no_torch_path(directory: Path) -> str:
    """A PYTHONPATH whose ``import torch`` raises ImportError, then the repository."""
    (directory / "torch").mkdir(parents=True, exist_ok=True)
    (directory / "torch" / "__init__.py").write_text(
        'raise ImportError("torch is not installed (test: the service must not need it)")\n',
        encoding="utf-8",
    )
    return os.pathsep.join([str(directory), str(ROOT)])


class Service:
    """A service process. ``Service.start(tmp, ["--bundle", DIR, ...])`` returns once /ready
    says yes."""

    def __init__(self, process: subprocess.Popen, log: Path, host: str, port: int):
        self.process = process
        self.log = log
        self.host = host
        self.port = port

    @classmethod
    def start(cls, directory: Path, args: list[str], ready: bool = True) -> Service:
        directory.mkdir(parents=True, exist_ok=True)
        log = directory / "service.log"
        env = dict(os.environ, PYTHONPATH=no_torch_path(directory / "fake_site"))
        env["OMP_NUM_THREADS"] = "1"
        with open(log, "w", encoding="utf-8") as stream:
            process = subprocess.Popen(
                [sys.executable, "-m", "export.serve", "--port", "0", "--threads", "1", *args],
                cwd=ROOT,
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = LISTENING.search(log.read_text(encoding="utf-8"))
            if found:
                break
            if process.poll() is not None:
                raise AssertionError(f"the service exited: {log.read_text(encoding='utf-8')}")
            time.sleep(0.05)
        else:
            process.kill()
            raise AssertionError(f"the service did not start: {log.read_text(encoding='utf-8')}")
        service = cls(process, log, found.group(1), int(found.group(2)))
        while ready and service.get("/ready")[0] != 200:
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.05)
        return service

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 30):
        """(status, headers, parsed JSON or text) of one request on a new connection."""
        connection = self.connection(timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read().decode("utf-8")
            kind = response.getheader("Content-Type", "")
            data = json.loads(raw) if kind.startswith("application/json") else raw
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            connection.close()

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body, timeout: float = 30):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", path, raw, timeout)

    def metric(self, name: str, **labels) -> float:
        """The value of one sample of /metrics (0 when absent)."""
        _, _, text = self.get("/metrics")
        return sample(text, name, **labels)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the service did not stop") from None


def sample(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def read_events(response) -> list[tuple[str, dict]]:
    """Server-sent events of a streamed response: (event name, data) pairs."""
    events, name = [], "message"
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: ") :])))
            name = "message"
    return events


def open_stream(service: Service, body: dict, timeout: float = 30):
    """Start a streaming request; return (connection, response) to read events from."""
    connection = service.connection(timeout)
    connection.request(
        "POST", "/v1/generate", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return connection, connection.getresponse()


def next_event(response) -> tuple[str, dict]:
    """Read one event of a stream."""
    name = "message"
    while True:
        line = response.readline().decode("utf-8")
        if line == "":
            raise EOFError("the stream ended")
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            return name, json.loads(line[len("data: ") :])
