"""Prove the GPU paths on a CUDA machine: run this, read the table, and the exit status says
whether every check passed (0) or some did not (1).

    python scripts/gpu_check.py                   # on a CUDA machine: every check (minutes)
    python scripts/gpu_check.py --device cpu      # dry run on a CPU: the same code and
                                                  # comparisons; GPU-only rows say "skip"
    python scripts/gpu_check.py --quick           # fewer updates and smaller models

Every row trains or decodes through the toolkit's own code (TranslationTask, Trainer, the
exporter, the ONNX runtime) on a synthetic word-level corpus made here, so it needs no data:

- versions: torch, CUDA, cuDNN, the GPU, onnxruntime and its providers;
- cuDNN LSTM kernels: the kernels a training step runs, profiled (on a CPU: oneDNN's);
- fp32 parity: the per-update losses of 50 updates on the CPU and on the device (TF32 off);
- AMP bf16 and fp16 against fp32 over 500 updates: final loss gap; for fp16 the loss-scale
  drops, gradients unscaled before clipping (their norm matches fp32's, not 2^16 times it), and
  the scaler's state saved in last.pt and restored on resume;
- training tokens/s on the device and on the CPU at two model sizes;
- peak GPU memory against batch_tokens;
- torchrun with one process (NCCL on a GPU, gloo on a CPU), and with two GPUs when there are
  two: 2 GPUs take the updates of 1 GPU accumulating 2 batches;
- onnxruntime: the CUDA provider first in the decoder's session (onnxruntime falls back to the
  CPU silently otherwise), IO-binding greedy decoding token-identical to torch greedy, and the
  latency of one decoding step.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CUDNN_RNN_MARKERS = ("cudnn", "rnn", "lstm")  # lower-case pieces of cuDNN's RNN kernel names
PARITY_TOLERANCE = 1e-3  # fp32 CPU vs GPU: relative gap of the per-update losses
AMP_TOLERANCE = 0.05  # AMP vs fp32: relative gap of the mean loss over the last updates


# ----------------------------------------------------------------------------- the table


@dataclass
class Row:
    check: str
    result: str
    verdict: str  # ok, FAIL, skip, info


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, check: str, result: str, passed: bool | None = None) -> None:
        """A row; ``passed`` None for a figure that is reported, not judged."""
        verdict = "info" if passed is None else ("ok" if passed else "FAIL")
        self.rows.append(Row(check, result, verdict))
        print(f"  {verdict:4}  {check}: {result}", file=sys.stderr, flush=True)

    def skip(self, check: str, reason: str) -> None:
        self.add(check, reason)
        self.rows[-1].verdict = "skip"

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "FAIL"]

    def table(self) -> str:
        width = max(len(row.check) for row in self.rows)
        lines = [
            f"| {'check':{width}} | verdict | result |",
            f"|{'-' * (width + 2)}|---------|---|",
        ]
        lines += [f"| {row.check:{width}} | {row.verdict:7} | {row.result} |" for row in self.rows]
        return "\n".join(lines)

    def exit_status(self) -> int:
        return 1 if self.failed else 0


def relative_gap(values: list[float], reference: list[float]) -> float:
    """The largest |value - reference| / |reference| over paired values (inf if the lengths
    differ or a value is not finite)."""
    if len(values) != len(reference) or not values:
        return float("inf")
    gaps = [abs(v - r) / max(abs(r), 1e-12) for v, r in zip(values, reference)]
    return max(gaps) if all(g == g for g in gaps) else float("inf")


def scale_drops(scales: list[float]) -> int:
    """How many times the loss scale went down (an fp16 overflow, the step skipped)."""
    return sum(later < earlier for earlier, later in zip(scales, scales[1:]))


def median_ratio(values: list[float], reference: list[float]) -> float:
    return statistics.median(v / max(r, 1e-12) for v, r in zip(values, reference))


def cudnn_rnn_kernels(names: list[str]) -> list[str]:
    """The names that are recurrent kernels (cuDNN's on a GPU: ``RNN_blockPersist_fp_LSTM``,
    ``elemWiseRNNcell``, ``cudnn::...``; oneDNN's on a CPU)."""
    return sorted({n for n in names if any(m in n.lower() for m in CUDNN_RNN_MARKERS)})


# ----------------------------------------------------------------------------- training runs

WORDS = "kala mori tesu nabe rilo pami soka dune feli garo hina jupe kovi lume nesa poru".split()


def synthetic_corpus(pairs: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Source sentences of 6 to 14 invented words; the target is the source reversed, with
    every word upper-cased (a task a small model learns quickly)."""
    rng = random.Random(seed)
    source = [" ".join(rng.choices(WORDS, k=rng.randint(6, 14))) for _ in range(pairs)]
    target = [" ".join(reversed(s.upper().split())) for s in source]
    return source, target


def make_config(**settings):
    from seq2seq.config import TranslationConfig
    from seq2seq.core.config import update_config

    values = dict(
        embedding_size=64,
        hidden_size=64,
        encoder_layers=2,
        decoder_layers=2,
        dropout=0.0,
        embedding_dropout=0.0,
        tie_embeddings=False,
        batch_tokens=1024,
        learning_rate=3e-3,
        lr_schedule="constant",
        label_smoothing=0.0,
        log_every=1,
        eval_every=100000,
        progress=False,
        amp="off",
        max_length=40,
    )
    values.update(settings)
    return update_config(TranslationConfig(), values, "gpu_check")


def make_trainer(config, device: str, run_dir: str, corpus):
    """A trainer of ``config`` on ``device``, from the same initial weights every time."""
    import torch

    from export.runtime.tokenizers import WordTokenizer
    from seq2seq.core.trainer import Trainer
    from seq2seq.model import build_model
    from seq2seq.task import TranslationTask

    source, target = corpus
    source_tokenizer = WordTokenizer.build(" ".join(source), min_count=1)
    target_tokenizer = WordTokenizer.build(" ".join(target), min_count=1)
    torch.manual_seed(config.seed)
    model = build_model(config, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    valid = (source[:16], target[:16])
    task = TranslationTask(
        config,
        model.to(device),
        source_tokenizer,
        target_tokenizer,
        source,
        target,
        *valid,
        log=lambda message: None,
    )
    return Trainer(task, config, run_dir, log=lambda message: None)


def train(config, device: str, run_dir: str, corpus, trainer=None, resume: bool = False):
    """Train (a new trainer, or ``trainer``); returns the trainer and its train rows of
    metrics.jsonl."""
    from seq2seq.core.metrics import read_metrics

    trainer = trainer or make_trainer(config, device, run_dir, corpus)
    trainer.train(resume=resume)
    rows = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
    return trainer, [r for r in rows if r["split"] == "train"]


def tail_mean(rows: list[dict], key: str = "loss", share: float = 0.1) -> float:
    tail = rows[-max(1, int(len(rows) * share)) :]
    return statistics.fmean(r[key] for r in tail)


# ----------------------------------------------------------------------------- the checks


def check_versions(report: Report, device: str) -> None:
    import onnxruntime as ort
    import torch

    cuda = torch.version.cuda or "none"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none"
    gpu = torch.cuda.get_device_name() if device == "cuda" else "none"
    report.add("torch / CUDA / cuDNN", f"torch {torch.__version__}, CUDA {cuda}, cuDNN {cudnn}")
    report.add(
        "device", gpu if device == "cuda" else f"cpu, torch threads: {torch.get_num_threads()}"
    )
    providers = ", ".join(ort.get_available_providers())
    report.add("onnxruntime", f"{ort.__version__} ({providers})")


def check_kernels(report: Report, device: str, corpus, work: str) -> None:
    """Profile one training step and name the recurrent kernels it ran."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    config = make_config(max_steps=2)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        train(config, device, os.path.join(work, "kernels"), corpus)
    events = profiler.key_averages()
    if device == "cuda":  # the kernels the GPU ran, not the operators that launched them
        names = [e.key for e in events if e.device_type == DeviceType.CUDA]
        kernels = cudnn_rnn_kernels(names)
        report.add("cuDNN LSTM kernels used", ", ".join(kernels[:4]) or "none", bool(kernels))
    else:
        cpu = cudnn_rnn_kernels([e.key for e in events])
        report.add("recurrent kernels (CPU)", ", ".join(cpu[:4]) or "none")


def check_parity(report: Report, device: str, updates: int, corpus, work: str):
    """fp32 losses on the CPU and on the device, TF32 off; returns the device run's trainer."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    config = make_config(max_steps=updates)
    _, on_cpu = train(config, "cpu", os.path.join(work, "fp32-cpu"), corpus)
    trainer, on_device = train(config, device, os.path.join(work, "fp32-device"), corpus)
    gap = relative_gap([r["loss"] for r in on_device], [r["loss"] for r in on_cpu])
    report.add(
        f"fp32 loss parity CPU vs {device}, {updates} updates (TF32 off)",
        f"largest relative gap {gap:.2e} (tolerance {PARITY_TOLERANCE:g}); loss "
        f"{on_cpu[0]['loss']:.3f} -> {on_cpu[-1]['loss']:.3f}",
        gap <= PARITY_TOLERANCE,
    )
    return trainer


def check_amp(report: Report, device: str, updates: int, corpus, work: str) -> None:
    from seq2seq.core.checkpoint import load_checkpoint
    from seq2seq.core.hardware import cpu_has_native_bf16

    base = dict(max_steps=updates, clip_grad_norm=1.0)
    _, fp32 = train(make_config(**base), device, os.path.join(work, "amp-fp32"), corpus)
    reference = tail_mean(fp32)
    for dtype in ("bf16", "fp16"):
        check = f"AMP {dtype} vs fp32, {updates} updates"
        if device == "cpu" and (dtype == "fp16" or not cpu_has_native_bf16()):
            report.skip(check, "needs CUDA" if dtype == "fp16" else "no native bf16 on this CPU")
            continue
        run_dir = os.path.join(work, f"amp-{dtype}")
        _, rows = train(make_config(**base, amp=dtype), device, run_dir, corpus)
        gap = abs(tail_mean(rows) - reference) / reference
        report.add(
            check,
            f"final loss {tail_mean(rows):.4f} vs {reference:.4f}: gap {gap:.2%} "
            f"(tolerance {AMP_TOLERANCE:.0%})",
            gap <= AMP_TOLERANCE,
        )
        if dtype != "fp16":
            continue
        scales = [r["loss_scale"] for r in rows]
        report.add("fp16 loss-scale drops", f"{scale_drops(scales)} (final scale {scales[-1]:g})")
        ratio = median_ratio([r["grad_norm"] for r in rows], [r["grad_norm"] for r in fp32])
        report.add(
            "fp16 gradients unscaled before clipping",
            f"median gradient norm fp16 / fp32 = {ratio:.3f} (scaled, it would be ~{scales[0]:g})",
            0.5 <= ratio <= 2.0,
        )
        saved = load_checkpoint(os.path.join(run_dir, "last.pt"))["scaler"]
        longer = make_config(**{**base, "max_steps": updates + 10}, amp=dtype)
        resumed = make_trainer(longer, device, run_dir, corpus)
        resumed.resume()
        restored = resumed.scaler.state_dict()
        _, more = train(longer, device, run_dir, corpus, trainer=resumed, resume=True)
        same = all(restored[k] == saved[k] for k in ("scale", "growth_factor", "_growth_tracker"))
        report.add(
            "fp16 scaler state saved and resumed",
            f"scale {saved['scale']:g} (last logged {scales[-1]:g}), growth tracker "
            f"{saved['_growth_tracker']} restored; resumed to update {more[-1]['step']}",
            same and saved["scale"] == scales[-1] and more[-1]["step"] == updates + 10,
        )


def check_speed(report: Report, device: str, quick: bool, corpus, work: str) -> None:
    sizes = (32, 64) if quick else (256, 1024)
    steps = 6 if quick else 25
    for hidden in sizes:
        config = make_config(
            hidden_size=hidden,
            embedding_size=hidden,
            batch_tokens=4096,
            max_steps=steps,
            log_every=steps // 3,
        )
        speeds = {}
        for where in dict.fromkeys(("cpu", device)):
            _, rows = train(config, where, os.path.join(work, f"speed-{hidden}-{where}"), corpus)
            speeds[where] = rows[-1]["tokens_per_s"]  # the last window: warm
        ratio = speeds[device] / max(1, speeds["cpu"])
        report.add(
            f"training tokens/s, 2x{hidden} LSTM, 4096-token batches",
            f"{device} {speeds[device]:,}, cpu {speeds['cpu']:,}: {ratio:.1f}x",
        )


def check_memory(report: Report, device: str, corpus, work: str) -> None:
    if device != "cuda":
        report.skip("peak GPU memory vs batch_tokens", "needs CUDA")
        return
    import torch

    peaks = []
    for tokens in (1024, 2048, 4096, 8192):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        config = make_config(hidden_size=512, embedding_size=512, batch_tokens=tokens, max_steps=3)
        train(config, device, os.path.join(work, f"memory-{tokens}"), corpus)
        peaks.append((tokens, torch.cuda.max_memory_allocated() / 2**20))
    shown = ", ".join(f"{tokens}: {mib:.0f} MiB" for tokens, mib in peaks)
    growing = all(b[1] >= a[1] for a, b in zip(peaks, peaks[1:]))
    report.add("peak GPU memory vs batch_tokens (2x512)", shown, growing)


def corpus_files(corpus, work: str) -> list[str]:
    paths = []
    for side, lines in zip(("src", "tgt"), corpus):
        path = os.path.join(work, f"train.{side}")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        paths.append(path)
    return [
        "--train-src", paths[0], "--train-tgt", paths[1],
        "--valid-src", paths[0], "--valid-tgt", paths[1],
    ]  # fmt: skip


def failure(*launches: subprocess.CompletedProcess) -> str:
    """The error line of the first failed launch (its last lines when it printed none)."""
    for done in launches:
        if done.returncode:
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            return errors[-1] if errors else " / ".join(done.stderr.strip().splitlines()[-3:])
    return ""


def check_torchrun(report: Report, device: str, corpus, work: str) -> None:
    """torchrun with one process; with two GPUs, 2 processes == 1 accumulating 2 batches."""
    import torch

    data = corpus_files((corpus[0][:200], corpus[1][:200]), work)
    common = [
        *data, "--device", device, "--vocab-size", "80", "--hidden-size", "64",
        "--embedding-size", "64", "--dropout", "0", "--embedding-dropout", "0",
        "--max-steps", "6", "--log-every", "1", "--eval-every", "100000",
        "--progress", "false", "--no-export", "--batch-tokens", "512",
    ]  # fmt: skip
    backend = "nccl" if device == "cuda" else "gloo"
    environment = {**os.environ, "PYTHONPATH": ROOT}

    def launch(processes: int, out: str, *extra: str) -> subprocess.CompletedProcess:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", "-m", "seq2seq.train", *common, "--out", out, *extra,
        ]  # fmt: skip
        return subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
        )

    done = launch(1, os.path.join(work, "torchrun-1"))
    joined = f"data parallel: world size 1 ({backend})" in done.stdout
    report.add(
        f"torchrun world size 1 on {backend}",
        "trained 6 updates" if done.returncode == 0 else failure(done),
        done.returncode == 0 and joined,
    )
    if device != "cuda" or torch.cuda.device_count() < 2:
        report.skip("torchrun 2 GPUs == 1 GPU accumulating 2", "needs two GPUs")
        return
    from seq2seq.core.metrics import read_metrics

    two = launch(2, os.path.join(work, "torchrun-2"))
    one = launch(1, os.path.join(work, "torchrun-1x2"), "--accumulate", "2")
    if two.returncode or one.returncode:
        report.add("torchrun 2 GPUs == 1 GPU accumulating 2 (NCCL)", failure(two, one), False)
        return
    losses = [
        [r["loss"] for r in read_metrics(os.path.join(work, name, "metrics.jsonl"))]
        for name in ("torchrun-2", "torchrun-1x2")
    ]
    gap = relative_gap(losses[0], losses[1])
    report.add(
        "torchrun 2 GPUs == 1 GPU accumulating 2 (NCCL)",
        f"largest relative loss gap {gap:.2e}",
        gap <= PARITY_TOLERANCE,
    )


def check_decoding(report: Report, device: str, trainer, work: str) -> None:
    """The fp32 model exported, decoded by onnxruntime with IO binding and by torch."""
    from export.runtime import Translator
    from export.translation import export_translation
    from seq2seq.core.checkpoint import load_checkpoint
    from seq2seq.torch_translator import TorchTranslator

    bundle = os.path.join(work, "bundle")
    export_translation(load_checkpoint(trainer.best_path), bundle)
    ort_device = "cuda" if device == "cuda" else "cpu"
    try:
        onnx = Translator.load(bundle, device=ort_device, io_binding=True)
    except RuntimeError as error:  # no onnxruntime-gpu
        report.add("onnxruntime CUDA provider first", str(error), False)
        return
    providers = onnx.decoder_step.get_providers()
    if device == "cuda":
        report.add(
            "onnxruntime CUDA provider first",
            ", ".join(providers),
            providers[0] == "CUDAExecutionProvider",
        )
    else:
        report.skip("onnxruntime CUDA provider first", f"cpu run ({', '.join(providers)})")
    torch_translator = TorchTranslator.from_checkpoint(trainer.best_path, device=device)
    sources = trainer.task.valid_src
    by_onnx = [t.text for t in onnx.translate(sources, beam=1)]
    by_torch = [t.text for t in torch_translator.translate(sources, beam=1)]
    same = sum(a == b for a, b in zip(by_onnx, by_torch))
    report.add(
        "IO-binding greedy == torch greedy",
        f"{same} of {len(sources)} translations token-identical",
        same == len(sources),
    )
    for name, translator in (("onnxruntime", onnx), ("torch", torch_translator)):
        started, steps = time.perf_counter(), 0
        for sentence in sources:
            steps += len(translator.translate([sentence], beam=1)[0].text.split()) + 1
        milliseconds = (time.perf_counter() - started) * 1000 / steps
        report.add(f"greedy decoding step latency, {name}, batch 1", f"{milliseconds:.2f} ms")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="what to prove")
    parser.add_argument("--quick", action="store_true", help="fewer updates, smaller models")
    parser.add_argument("--parity-updates", type=int, default=50, help="fp32 parity updates")
    parser.add_argument("--amp-updates", type=int, default=500, help="AMP comparison updates")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)"
    )
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: torch sees no CUDA GPU; use --device cpu for a dry run", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    parity, amp = args.parity_updates, args.amp_updates
    if args.quick:
        parity, amp = min(parity, 10), min(amp, 30)
    corpus = synthetic_corpus(3000)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        check_versions(report, args.device)
        check_kernels(report, args.device, corpus, work)
        trainer = check_parity(report, args.device, parity, corpus, work)
        check_amp(report, args.device, amp, corpus, work)
        check_speed(report, args.device, args.quick, corpus, work)
        check_memory(report, args.device, corpus, work)
        check_torchrun(report, args.device, corpus, work)
        check_decoding(report, args.device, trainer, work)
    print(report.table())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(row) for row in report.rows], f, indent=1)
    failed = report.failed
    print(f"\n{len(failed)} check(s) failed" if failed else "\nevery check passed")
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
