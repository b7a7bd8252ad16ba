"""Serving throughput and latency: python -m export.serve under wrk, one sentence per request.

    flock /tmp/cpu-heavy.lock python scripts/bench_serve.py --bundle runs/bible/bundle \\
        --src ../shared/data/bible-es-en/test.es

In one run, on the same sentences (cycled): a direct ``Translator.translate([sentence])`` loop
(the baseline, in this process, at concurrency 1); then the service with dynamic batching
(``--max-batch-size 32``) and without (``--max-batch-size 1``), each under wrk at concurrency 1,
8 and 32 (sentences/s, p50 and p99 latency, non-200 answers); then an overload run (far more
connections than ``--max-queue``): the service answers 503s, stays up, and its resident memory
is sampled through the whole run. Greedy search; the service and the baseline get the same
onnxruntime threads. Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
LUA = os.path.join(ROOT, "scripts", "bench_serve.lua")


def cpu_description() -> str:
    model = platform.processor() or "unknown CPU"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "avx_vnni"]
    shown = ", ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"
    return f"{model}, {os.cpu_count()} cores visible, flags: {shown}"


def read_sentences(path: str, limit: int) -> list[str]:
    with open(path, encoding="utf-8") as f:
        sentences = [line.strip() for line in f if line.strip()]
    return sentences[:limit] if limit else sentences


def direct_baseline(bundle: str, sentences: list[str], seconds: float, threads) -> dict:
    """``Translator.translate([sentence])`` one after another, in this process."""
    from export.runtime import Translator

    translator = Translator.load(bundle, threads=threads)
    translator.translate(sentences[:2])
    latencies = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        sentence = sentences[len(latencies) % len(sentences)]
        begin = time.perf_counter()
        translator.translate([sentence])
        latencies.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    return {
        "sentences_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1e3,
        "requests": len(latencies),
    }


class ServiceProcess:
    """python -m export.serve on a free loopback port; samples its resident memory."""

    def __init__(self, bundle: str, workdir: str, *flags: str):
        self.log_path = os.path.join(workdir, f"service-{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "w", encoding="utf-8")
        command = [sys.executable, "-m", "export.serve", "--bundle", bundle, "--port", "0"]
        self.process = subprocess.Popen(
            [*command, *flags], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while not (found := re.search(r"on (http://\S+) ", self.read_log())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the service did not start:\n{self.read_log()}")
            time.sleep(0.1)
        self.url = found.group(1)
        while self.status("/ready") != 200:
            if time.monotonic() > deadline:
                raise SystemExit("the service never became ready")
            time.sleep(0.1)
        self.rss_mb: list[float] = []
        self.sampling = True
        self.sampler = threading.Thread(target=self.sample_memory, daemon=True)
        self.sampler.start()

    def read_log(self) -> str:
        with open(self.log_path, encoding="utf-8") as f:
            return f.read()

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status
        except OSError as error:
            return getattr(error, "code", 0)

    def sample_memory(self) -> None:
        while self.sampling:
            try:
                with open(f"/proc/{self.process.pid}/status", encoding="utf-8") as f:
                    rss = next(line for line in f if line.startswith("VmRSS:"))
                self.rss_mb.append(int(rss.split()[1]) / 1024)
            except (OSError, StopIteration):
                return
            time.sleep(0.5)

    def stop(self) -> int:
        self.sampling = False
        self.process.terminate()
        code = self.process.wait(60)
        self.log.close()
        return code


def paired_overhead(bundle: str, url: str, sentences: list[str], rounds: int, threads) -> dict:
    """Each sentence translated directly and through the service (one keep-alive connection),
    alternately, ``rounds`` times: the median of the per-sentence differences is the latency
    the service adds, free of the sentence mix that moves a p50."""
    import http.client
    from urllib.parse import urlparse

    from export.runtime import Translator

    translator = Translator.load(bundle, threads=threads)
    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    direct, served = [], []
    for _ in range(rounds):
        for sentence in sentences:
            body = json.dumps({"text": sentence}).encode()
            begin = time.perf_counter()
            translator.translate([sentence])
            direct.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            connection.request("POST", "/v1/translate", body, {"Content-Type": "application/json"})
            connection.getresponse().read()
            served.append(time.perf_counter() - begin)
    connection.close()
    differences = [(b - a) * 1e3 for a, b in zip(direct, served)]
    return {
        "direct_p50_ms": statistics.median(direct) * 1e3,
        "service_p50_ms": statistics.median(served) * 1e3,
        "median_difference_ms": statistics.median(differences),
        "mean_difference_ms": statistics.mean(differences),
        "pairs": len(differences),
    }


def run_wrk(url: str, connections: int, seconds: float, bodies: str, timeout_s: int = 30) -> dict:
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--timeout", f"{timeout_s}s", "-s", LUA, url]
    result = subprocess.run(
        command, capture_output=True, text=True, env=dict(os.environ, BENCH_BODIES=bodies)
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    found = json.loads(line[len("BENCH ") :])
    ok = found["statuses"].get("200", 0)
    found["sentences_per_s"] = ok / found["seconds"]
    found["bad"] = found["requests"] - ok + found["errors"]
    return found


def report_direct(args, sentences: list[str]) -> dict:
    found = direct_baseline(args.bundle, sentences, args.seconds, args.threads)
    found["bad"] = 0
    print(f"  direct Translator.translate, concurrency 1: {summary(found)}", flush=True)
    return found


def summary(found: dict) -> str:
    bad = found.get("bad", 0)
    return (
        f"{found['sentences_per_s']:.1f} sentences/s, p50 {found['p50_ms']:.2f} ms, "
        f"p99 {found['p99_ms']:.2f} ms, {bad} non-200"
    )


def medians(runs: list[dict]) -> dict:
    keys = ("sentences_per_s", "p50_ms", "p99_ms", "bad")
    return {key: statistics.median(run[key] for run in runs) for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", required=True, help="a translation bundle")
    parser.add_argument("--src", required=True, help="source sentences, one a line")
    parser.add_argument("--limit", type=int, default=50, help="use the first N sentences")
    parser.add_argument("--seconds", type=float, default=10, help="per setting")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every setting (median)")
    parser.add_argument("--paired-rounds", type=int, default=3, help="0: skip the paired run")
    parser.add_argument("--paired-only", action="store_true", help="only the paired run")
    parser.add_argument("--overload-connections", type=int, default=1000)
    parser.add_argument("--overload-queue", type=int, default=64)
    parser.add_argument("--overload-seconds", type=float, default=30)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    sentences = read_sentences(args.src, args.limit)
    threads = ["--threads", str(args.threads)] if args.threads else []
    print(f"CPU: {cpu_description()}")
    print(f"bundle {args.bundle}, {len(sentences)} sentences, greedy, {args.seconds:g} s each")
    workdir = tempfile.mkdtemp(prefix="bench-serve-")
    bodies = os.path.join(workdir, "bodies.jsonl")
    with open(bodies, "w", encoding="utf-8") as f:
        for sentence in sentences:
            f.write(json.dumps({"text": sentence}, ensure_ascii=False) + "\n")

    if args.paired_rounds:
        service = ServiceProcess(args.bundle, workdir, *threads)
        try:
            paired = paired_overhead(
                args.bundle, service.url, sentences, args.paired_rounds, args.threads
            )
        finally:
            service.stop()
        print(
            f"paired, concurrency 1 ({paired['pairs']} pairs of the same sentence, direct then "
            f"service): p50 direct {paired['direct_p50_ms']:.2f} ms, service "
            f"{paired['service_p50_ms']:.2f} ms; per-sentence difference: median "
            f"{paired['median_difference_ms']:+.2f} ms, "
            f"mean {paired['mean_difference_ms']:+.2f} ms",
            flush=True,
        )
    if args.paired_only:
        return
    concurrency = [int(c) for c in args.concurrency.split(",")]
    services = {
        batch: ServiceProcess(args.bundle, workdir, "--max-batch-size", str(batch), *threads)
        for batch in (32, 1)
    }
    labels = {32: "on (max batch 32)", 1: "off (max batch 1)"}
    runs: dict[tuple[int, int], list[dict]] = {
        (batch, c): [] for batch in services for c in concurrency
    }
    direct_runs = []
    try:
        # rounds, with every setting in each, so that noise from the machine hits all alike
        for round_number in range(args.rounds):
            print(f"round {round_number + 1} (load average {os.getloadavg()[0]:.2f})")
            direct_runs.append(report_direct(args, sentences))
            for c in concurrency:
                for batch, service in services.items():
                    found = run_wrk(service.url + "/v1/translate", c, args.seconds, bodies)
                    runs[(batch, c)].append(found)
                    print(f"  {labels[batch]}, concurrency {c}: {summary(found)}", flush=True)
    finally:
        for service in services.values():
            service.stop()
    rows = [
        "| batching | concurrency | sentences/s | p50 ms | p99 ms | non-200 answers |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    median = {key: medians(found) for key, found in runs.items()}
    for c in concurrency:
        for batch in services:
            m = median[(batch, c)]
            rows.append(
                f"| {labels[batch]} | {c} | {m['sentences_per_s']:.1f} | {m['p50_ms']:.2f} "
                f"| {m['p99_ms']:.2f} | {m['bad']:.0f} |"
            )
    direct = medians(direct_runs)
    rows.append(
        f"| direct `Translator.translate` | 1 | {direct['sentences_per_s']:.1f} "
        f"| {direct['p50_ms']:.2f} | {direct['p99_ms']:.2f} | - |"
    )
    print(f"medians over {args.rounds} rounds:")
    print("\n".join(rows))
    top = max(concurrency)
    speedup = median[(32, top)]["sentences_per_s"] / median[(1, top)]["sentences_per_s"]
    print(f"batching at concurrency {top}: {speedup:.2f}x the sentences/s of batching off")
    if 1 in concurrency:
        extra = median[(32, 1)]["p50_ms"] - direct["p50_ms"]
        print(
            f"concurrency 1: service p50 {median[(32, 1)]['p50_ms']:.2f} ms, direct "
            f"{direct['p50_ms']:.2f} ms ({extra:+.2f} ms)"
        )

    service = ServiceProcess(
        args.bundle, workdir, "--max-queue", str(args.overload_queue), *threads
    )
    try:
        time.sleep(1)
        start_rss = service.rss_mb[-1]
        found = run_wrk(
            service.url + "/v1/translate", args.overload_connections, args.overload_seconds, bodies
        )
        alive = service.status("/health")
        rss = service.rss_mb
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(found["statuses"].items()))
        print(
            f"overload: {args.overload_connections} connections, --max-queue "
            f"{args.overload_queue}, {args.overload_seconds:g} s: answers {statuses}; "
            f"socket errors {found['errors']}, timeouts {found['timeouts']}; "
            f"{found['sentences_per_s']:.1f} sentences/s served; /health after: {alive}"
        )
        third = max(1, len(rss) // 3)
        print(
            f"resident memory: {start_rss:.0f} MB before, {max(rss):.0f} MB peak, "
            f"first third of the run {statistics.mean(rss[:third]):.0f} MB on average, "
            f"last third {statistics.mean(rss[-third:]):.0f} MB ({len(rss)} samples)"
        )
    finally:
        code = service.stop()
    print(f"service exit status after SIGTERM: {code}")


if __name__ == "__main__":
    main()
