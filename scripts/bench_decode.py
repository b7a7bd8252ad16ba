"""Decoding speed and quality: torch eager vs ONNX fp32 vs ONNX int8, greedy and beam 5,
batch 1 and batch 32, all measured in one run on the same sentences.

    python scripts/bench_decode.py --checkpoint runs/bible/best.pt \\
        --src ../shared/data/bible-es-en/test.es --ref ../shared/data/bible-es-en/test.en

Exports the checkpoint twice (fp32 and int8) into a temporary folder, then translates the test
set with every engine x search x batch size, in rounds, so machine noise hits all of them alike.
Reports sentences/s, milliseconds per generated token (wall time / tokens of the returned
translations, EOS included) and sacrebleu BLEU, plus the speed-up of each engine over torch at
the same setting. Torch and onnxruntime get the same number of threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resized_checkpoint(checkpoint: str, size: int, workdir: str) -> str:
    """A copy of ``checkpoint`` whose model is random, with hidden and embedding size ``size``."""
    import torch

    from seq2seq.config import TranslationConfig
    from seq2seq.core.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
    from seq2seq.core.config import config_from_dict
    from seq2seq.model import build_model

    payload = load_checkpoint(checkpoint)
    settings = dict(payload["config"], hidden_size=size, embedding_size=size)
    config = config_from_dict(TranslationConfig, settings, checkpoint)
    vocab = payload["model"]
    torch.manual_seed(0)
    model = build_model(
        config, vocab["src_embedding.weight"].shape[0], vocab["tgt_embedding.weight"].shape[0]
    )
    payload.update(config=settings, model=model.state_dict(), format=CHECKPOINT_FORMAT)
    path = os.path.join(workdir, f"random-{size}.pt")
    save_checkpoint(payload, path)
    print(f"random model of size {size}: {sum(p.numel() for p in model.parameters()):,} parameters")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--limit", type=int, default=0, help="use the first N sentences only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="timed repetitions (median)")
    parser.add_argument("--engines", default="torch,onnx-fp32,onnx-int8")
    parser.add_argument(
        "--settings", default="greedy:1,greedy:32,beam5:1,beam5:32", help="search:batch pairs"
    )
    parser.add_argument(
        "--random-size",
        type=int,
        default=0,
        help="speed at another model size: replace the checkpoint's weights by a randomly "
        "initialised model with this hidden and embedding size (same vocabularies and layers); "
        "BLEU is then meaningless, compare ms/token",
    )
    args = parser.parse_args()

    import torch

    from export.exporter import export_checkpoint
    from export.runtime import Translator
    from seq2seq.data import read_parallel
    from seq2seq.scoring import corpus_scores
    from seq2seq.torch_translator import TorchTranslator

    torch.set_num_threads(args.threads)
    sources, references = read_parallel(args.src, args.ref)
    if args.limit:
        sources, references = sources[: args.limit], references[: args.limit]
    workdir = tempfile.mkdtemp(prefix="bench-decode-")
    if args.random_size:
        args.checkpoint = resized_checkpoint(args.checkpoint, args.random_size, workdir)
    engines = {}
    for name in args.engines.split(","):
        if name == "torch":
            engines[name] = TorchTranslator.from_checkpoint(args.checkpoint)
        else:
            quantize = "int8" if name.endswith("int8") else None
            bundle = os.path.join(workdir, name)
            export_checkpoint(args.checkpoint, bundle, quantize=quantize)
            engines[name] = Translator.load(bundle, threads=args.threads)
    settings = []
    for item in args.settings.split(","):
        search, batch = item.split(":")
        settings.append((search, 5 if search.startswith("beam") else 1, int(batch)))

    # warm up every engine once (graph optimisation, allocator)
    for translator in engines.values():
        translator.translate(sources[:4], beam=5, batch_size=4)

    timings: dict = {}
    outputs: dict = {}
    for _ in range(args.rounds):
        for search, beam, batch in settings:
            for name, translator in engines.items():
                started = time.perf_counter()
                translations = translator.translate(
                    sources, beam=beam, batch_size=batch, truncate=True
                )
                seconds = time.perf_counter() - started
                timings.setdefault((name, search, batch), []).append(seconds)
                outputs[(name, search, batch)] = translations

    print(
        f"\n{len(sources)} sentences, {args.threads} threads, median of {args.rounds} rounds; "
        f"speed-up = torch time / engine time at the same search and batch\n"
    )
    print("| engine | search | batch | sentences/s | ms/token | speed-up vs torch | BLEU | chrF |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for search, _, batch in settings:
        torch_time = statistics.median(timings.get(("torch", search, batch), [float("nan")]))
        for name in engines:
            seconds = statistics.median(timings[(name, search, batch)])
            translations = outputs[(name, search, batch)]
            tokens = sum(
                len(engines[name].target_tokenizer.encode(t.text)) + 1 for t in translations
            )
            scores = corpus_scores([t.text for t in translations], references)
            print(
                f"| {name} | {search} | {batch} | {len(sources) / seconds:.1f} | "
                f"{1000 * seconds / tokens:.2f} | {torch_time / seconds:.2f}x | "
                f"{scores['bleu']:.2f} | {scores['chrf']:.2f} |"
            )


if __name__ == "__main__":
    main()
