"""Data-parallel training on CPUs: 2 processes under torchrun against 1 process accumulating 2
batches, on a real corpus. Both take the same updates (the same losses, to float rounding);
the table compares their training time.

    python scripts/bench_data_parallel.py --data ../shared/data/bible-es-en --steps 40

Variants, one after another, all with the model and batches of configs/bible-es-en.yaml
(dropout off, so that the runs are comparable update by update):

- 1 process, 2 torch threads, ``--accumulate 2`` (the baseline);
- 2 processes (``python -m torch.distributed.run --nproc_per_node 2``, gloo), 1 thread each;
- 1 process, 1 thread, ``--accumulate 2`` (what each of the 2 processes would do alone).

The sentencepiece model is trained once, by the baseline, and copied into the other runs.
Training time is rank 0's clock at the last update (``elapsed`` in metrics.jsonl: the loop
only, no data loading or final validation).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = (
    # name, processes, threads per process, accumulate
    ("1 process x 2 threads, accumulate 2", 1, 2, 2),
    ("2 processes x 1 thread (torchrun, gloo)", 2, 1, 1),
    ("1 process x 1 thread, accumulate 2", 1, 1, 2),
)


def train_rows(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [row for row in rows if row["split"] == "train"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="directory with train.es/en, dev.es/en")
    parser.add_argument("--steps", type=int, default=40, help="updates per run")
    args = parser.parse_args()
    data = os.path.abspath(args.data)
    common = [
        "--config", os.path.join(ROOT, "configs", "bible-es-en.yaml"),
        "--train-src", f"{data}/train.es", "--train-tgt", f"{data}/train.en",
        "--valid-src", f"{data}/dev.es", "--valid-tgt", f"{data}/dev.en",
        "--dropout", "0", "--embedding-dropout", "0", "--max-steps", str(args.steps),
        "--eval-every", "100000", "--log-every", "1", "--progress", "false", "--no-export",
    ]  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-dp-") as work:
        spm = None
        for name, processes, threads, accumulate in VARIANTS:
            out = os.path.join(work, f"run-{len(results)}")
            if spm:
                shutil.copytree(spm, os.path.join(out, "spm"))
            launcher = [sys.executable]
            if processes > 1:
                launcher += ["-m", "torch.distributed.run", "--standalone"]
                launcher += [f"--nproc_per_node={processes}"]
            command = [*launcher, "-m", "seq2seq.train", *common, "--out", out]
            command += ["--threads", str(threads), "--accumulate", str(accumulate)]
            environment = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": str(threads)}
            started = time.monotonic()
            done = subprocess.run(
                command, cwd=ROOT, env=environment, capture_output=True, text=True
            )
            wall = time.monotonic() - started
            if done.returncode:
                print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                return 1
            spm = spm or os.path.join(out, "spm")
            rows = train_rows(out)
            results.append((name, rows, wall))
            print(f"{name}: {rows[-1]['elapsed']:.1f} s of training", file=sys.stderr)
        base_name, base_rows, _ = results[0]
        base_losses = [row["loss"] for row in base_rows]
        print(f"{args.steps} updates of 2 x 2048-token batches each (4,096 tokens per update)\n")
        print(
            "| variant | training s | vs baseline | command wall s | final loss "
            "| largest relative loss gap vs baseline |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, rows, wall in results:
            losses = [row["loss"] for row in rows]
            gap = max(abs(a - b) / abs(b) for a, b in zip(losses, base_losses, strict=True))
            seconds = rows[-1]["elapsed"]
            speed = base_rows[-1]["elapsed"] / seconds
            print(
                f"| {name} | {seconds:.1f} | {speed:.2f}x | {wall:.0f} | {losses[-1]:.4f} "
                f"| {gap:.1e} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
