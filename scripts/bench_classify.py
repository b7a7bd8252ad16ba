"""Text classification against fastText, in one run on this machine.

1. Trains the toolkit for ``--minutes`` with ``--config`` (or reuses ``--out`` with
   ``--reuse``) and scores its exported bundle on ``--test`` with the ONNX runtime.
2. Trains fastText supervised on the same training file, a grid on the dev file (lr x epochs
   x word n-grams; the best dev macro-F1 is kept), and scores it on ``--test``. fastText is not
   a dependency of the toolkit: it runs in its own Python (``--fasttext-python``, a venv with
   ``pip install fasttext-wheel==0.9.2 "numpy<2"``), driven through a subprocess.
3. The majority class, as a floor.
4. Prediction speed (texts/s) on the test texts at batch 1 and batch 64: the ONNX
   ``Classifier``, the same model in torch (fp32, eager), and fastText.

Prints a Markdown table and writes ``--json``. ::

    DATA=../shared/data/bible-sections
    python scripts/bench_classify.py --train $DATA/train.tsv --valid $DATA/dev.tsv \\
        --test $DATA/test.tsv --config configs/bible-sections.yaml \\
        --minutes 10 --out runs/bench-classify --fasttext-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# runs in fastText's own Python: trains one grid point per request, answers with predictions
FASTTEXT_DRIVER = r"""
import json, sys, time
import fasttext
request = json.load(sys.stdin)
texts = {name: [line.rstrip("\n") for line in open(path, encoding="utf-8")]
         for name, path in request["texts"].items()}
out = {"points": []}
def labels_of(model, lines):
    return [p[0].replace("__label__", "") for p in model.predict(lines, k=1)[0]]
for point in request["grid"]:
    started = time.time()
    model = fasttext.train_supervised(input=request["train"], lr=point["lr"],
        epoch=point["epoch"], wordNgrams=point["wordNgrams"], dim=100, loss="softmax",
        thread=request["threads"], seed=1, verbose=0)
    seconds = time.time() - started
    out["points"].append({**point, "train_seconds": seconds,
                          "dev": labels_of(model, texts["dev"])})
json.dump(out, sys.stdout)
"""

FASTTEXT_FINAL = r"""
import json, sys, time
import fasttext
request = json.load(sys.stdin)
test = [line.rstrip("\n") for line in open(request["test"], encoding="utf-8")]
p = request["point"]
started = time.time()
model = fasttext.train_supervised(input=request["train"], lr=p["lr"], epoch=p["epoch"],
    wordNgrams=p["wordNgrams"], dim=100, loss="softmax", thread=request["threads"], seed=1,
    verbose=0)
train_seconds = time.time() - started
labels = [x[0].replace("__label__", "") for x in model.predict(test, k=1)[0]]
speed = {}
for batch in (1, 64):
    started = time.perf_counter()
    for i in range(0, len(test), batch):
        model.predict(test[i:i + batch], k=1)
    speed[batch] = len(test) / (time.perf_counter() - started)
json.dump({"test": labels, "train_seconds": train_seconds, "speed": speed}, sys.stdout)
"""


def cpu_description() -> str:
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    shown = " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"
    return f"{model}, {os.cpu_count()} cores ({shown})"


def fasttext_file(data, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in zip(data.texts, data.labels):
            f.write(f"__label__{label} {' '.join(text.split())}\n")
    return path


def plain_texts(data, path: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for text in data.texts:
            f.write(" ".join(text.split()) + "\n")
    return path


def run_json(python: str, program: str, request: dict) -> dict:
    result = subprocess.run(
        [python, "-c", program], input=json.dumps(request), text=True, capture_output=True
    )
    if result.returncode:
        raise SystemExit(f"fastText failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


def speed(classifier, texts, batch: int) -> float:
    """Texts per second over ``texts``, ``batch`` at a time, after a warm-up pass."""
    for i in range(0, min(len(texts), 4 * batch), batch):
        classifier.probabilities(texts[i : i + batch], batch_size=batch)
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        classifier.probabilities(texts[i : i + batch], batch_size=batch)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True, help="dev data: model selection only")
    parser.add_argument("--test", required=True)
    parser.add_argument("--config", default=os.path.join(ROOT, "configs", "bible-sections.yaml"))
    parser.add_argument("--minutes", type=float, default=10.0, help="toolkit training time")
    parser.add_argument("--out", default=os.path.join("runs", "bench-classify"))
    parser.add_argument("--reuse", action="store_true", help="reuse the trained run in --out")
    parser.add_argument("--fasttext-python", required=True, help="a Python with fasttext")
    parser.add_argument("--fasttext-threads", type=int, default=2)
    parser.add_argument(
        "--grid",
        default="lr=0.1,0.5,1.0;epoch=25,50;wordNgrams=2,3",
        help="fastText grid: name=values;... (12 points by default)",
    )
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    import numpy as np

    from classify.data import read_labelled
    from classify.scores import classification_scores
    from classify.torch_classifier import TorchClassifier
    from export.runtime import Classifier

    print(f"CPU: {cpu_description()}", flush=True)
    train, dev, test = (read_labelled(p) for p in (args.train, args.valid, args.test))
    labels = sorted(set(train.labels))

    def scores(predicted: list[str]) -> dict:
        gold = [labels.index(label) for label in test.labels]
        chosen = [labels.index(label) for label in predicted]
        return classification_scores(gold, chosen, labels)

    results = {"cpu": cpu_description(), "rows": {}}
    # --- the toolkit
    bundle = os.path.join(args.out, "bundle")
    if not (args.reuse and os.path.isdir(bundle)):
        command = [
            sys.executable, "-m", "classify.train", "--config", args.config, "--train",
            args.train, "--valid", args.valid, "--out", args.out, "--max-minutes",
            str(args.minutes), "--progress", "false",
        ]  # fmt: skip
        print("$ " + " ".join(command), flush=True)
        started = time.time()
        subprocess.run(command, check=True, cwd=ROOT)
        results["toolkit_wall_seconds"] = time.time() - started
    onnx = Classifier.load(bundle)
    probabilities = onnx.probabilities(test.texts)
    toolkit = scores([onnx.labels[i] for i in probabilities.argmax(1)])
    with open(os.path.join(args.out, "metrics.jsonl"), encoding="utf-8") as f:
        valid_rows = [json.loads(line) for line in f if '"valid"' in line]
    best_dev = max(row["macro_f1"] for row in valid_rows)
    results["rows"]["toolkit"] = {
        "accuracy": toolkit["accuracy"],
        "macro_f1": toolkit["macro_f1"],
        "dev_macro_f1": best_dev,
        "train_minutes": valid_rows[-1]["elapsed"] / 60,
    }
    # --- fastText: the grid on dev, then the best point on test
    grid_axes = {}
    for part in args.grid.split(";"):
        name, values = part.split("=")
        grid_axes[name] = [float(v) if name == "lr" else int(v) for v in values.split(",")]
    grid = [dict(zip(grid_axes, values)) for values in itertools.product(*grid_axes.values())]
    with tempfile.TemporaryDirectory() as scratch:
        ft_train = fasttext_file(train, os.path.join(scratch, "train.ft"))
        dev_texts = plain_texts(dev, os.path.join(scratch, "dev.txt"))
        test_texts = plain_texts(test, os.path.join(scratch, "test.txt"))
        started = time.time()
        searched = run_json(
            args.fasttext_python,
            FASTTEXT_DRIVER,
            {"train": ft_train, "texts": {"dev": dev_texts}, "grid": grid,
             "threads": args.fasttext_threads},
        )  # fmt: skip
        dev_gold = [labels.index(label) for label in dev.labels]
        for point in searched["points"]:
            chosen = [labels.index(x) if x in labels else 0 for x in point.pop("dev")]
            point["dev_macro_f1"] = classification_scores(dev_gold, chosen, labels)["macro_f1"]
            print(f"fastText {point}", flush=True)
        best = max(searched["points"], key=lambda p: p["dev_macro_f1"])
        point = {k: best[k] for k in grid_axes}
        final = run_json(
            args.fasttext_python,
            FASTTEXT_FINAL,
            {"train": ft_train, "test": test_texts, "point": point,
             "threads": args.fasttext_threads},
        )  # fmt: skip
        results["fasttext_grid_seconds"] = time.time() - started
    fasttext = scores(final["test"])
    results["rows"]["fasttext"] = {
        "accuracy": fasttext["accuracy"],
        "macro_f1": fasttext["macro_f1"],
        "dev_macro_f1": best["dev_macro_f1"],
        "train_minutes": final["train_seconds"] / 60,
        "best_point": point,
    }
    majority = max(labels, key=train.labels.count)
    floor = scores([majority] * len(test))
    results["rows"]["majority"] = {"accuracy": floor["accuracy"], "macro_f1": floor["macro_f1"]}
    # --- prediction speed
    torch_model = TorchClassifier.from_checkpoint(os.path.join(args.out, "best.pt"))
    np.testing.assert_allclose(torch_model.probabilities(test.texts[:64]),
                               probabilities[:64], atol=1e-4)  # fmt: skip
    texts = test.texts
    results["speed"] = {
        "onnx": {b: speed(onnx, texts, b) for b in (1, 64)},
        "torch": {b: speed(torch_model, texts, b) for b in (1, 64)},
        "fasttext": {int(b): v for b, v in final["speed"].items()},
    }
    # --- report
    rows = results["rows"]
    print("\n| model | test accuracy | test macro-F1 | dev macro-F1 | training |")
    print("|---|---|---|---|---|")
    print(f"| toolkit ({os.path.basename(args.config)}) | {rows['toolkit']['accuracy']:.4f} | "
          f"{rows['toolkit']['macro_f1']:.4f} | {rows['toolkit']['dev_macro_f1']:.4f} | "
          f"{rows['toolkit']['train_minutes']:.1f} min |")  # fmt: skip
    print(f"| fastText {point} | {rows['fasttext']['accuracy']:.4f} | "
          f"{rows['fasttext']['macro_f1']:.4f} | {rows['fasttext']['dev_macro_f1']:.4f} | "
          f"{final['train_seconds']:.0f} s (grid of {len(grid)}) |")  # fmt: skip
    print(f"| majority class ({majority}) | {floor['accuracy']:.4f} | {floor['macro_f1']:.4f} "
          "| | |")  # fmt: skip
    for name, row in (("toolkit", toolkit), ("fastText", fasttext)):
        shown = ", ".join(f"{k} {v['f1']:.3f}" for k, v in row["per_class"].items())
        print(f"per-class F1, {name}: {shown}")
    print("\n| prediction (texts/s, test set) | batch 1 | batch 64 |")
    print("|---|---|---|")
    for name, label in (("onnx", "ONNX Classifier (fp32)"), ("torch", "torch eager (fp32)"),
                        ("fasttext", "fastText")):  # fmt: skip
        figures = results["speed"][name]
        print(f"| {label} | {figures[1]:,.0f} | {figures[64]:,.0f} |")
    ratio = results["speed"]["onnx"][1] / results["speed"]["torch"][1]
    print(f"\nONNX / torch at batch 1: {ratio:.2f}x; at batch 64: "
          f"{results['speed']['onnx'][64] / results['speed']['torch'][64]:.2f}x")  # fmt: skip
    gap = rows["toolkit"]["macro_f1"] - rows["fasttext"]["macro_f1"]
    print(f"test macro-F1, toolkit - fastText: {gap:+.4f} (goal: at least +0.05)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
