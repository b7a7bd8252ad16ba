"""Sampling speed of a language model: the ONNX runtime's Generator against torch eager.

The same model (a trained checkpoint, or a randomly initialised one of the size given) samples
``--tokens`` tokens per row at batch 1 and batch 16, three ways:

- ``onnx Generator``: :class:`export.runtime.Generator` on the exported bundle (what
  ``python -m generate.sample`` runs);
- ``torch eager loop``: a straightforward loop over the torch model, one token per call, state
  kept in torch, ``torch.multinomial`` to sample;
- ``torch eager loop, oneDNN off``: the same with torch's oneDNN RNN kernels (its CPU default)
  switched off: they cost milliseconds per one-token call;
- ``torch Generator``: :class:`generate.torch_generator.TorchGenerator`, the torch model (oneDNN
  off) under the runtime's own search code (so the gap to the first line is the model call).

Every variant runs once to warm up, then ``--rounds`` times interleaved; the table gives the
median tokens/s (generated tokens of all rows per second, prompt reading included). ::

    python scripts/bench_lm_sampling.py                      # random 2x384 LSTM, char vocab
    python scripts/bench_lm_sampling.py --checkpoint runs/shakespeare-char/best.pt
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROMPT = "ROMEO.\nWhat light through yonder window breaks"


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", help="a language-model checkpoint (default: random)")
    parser.add_argument(
        "--hidden-size", type=int, default=384, help="random model: hidden size (the default's)"
    )
    parser.add_argument(
        "--embedding-size", type=int, default=96, help="random model: embedding (the default's)"
    )
    parser.add_argument("--layers", type=int, default=2, help="random model: layers")
    parser.add_argument(
        "--cell", default="lstm", choices=["lstm", "gru", "rnn"], help="random model: cell"
    )
    parser.add_argument("--tokens", type=int, default=200, help="tokens to sample per row")
    parser.add_argument("--batch-sizes", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of every variant")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch and onnxruntime alike (0: their defaults)",
    )
    return parser.parse_args()


def random_payload(args) -> dict:
    """A checkpoint payload for a randomly initialised char model over the demo text."""
    import torch

    from generate.config import LanguageModelConfig
    from generate.model import build_model
    from generate.task import LanguageModelTask
    from generate.vocabulary import build_tokenizer
    from seq2seq.core.checkpoint import checkpoint_payload
    from seq2seq.core.config import update_config
    from seq2seq.core.text_files import default_corpus_path, read_text

    config = update_config(
        LanguageModelConfig(),
        {
            "hidden_size": args.hidden_size,
            "embedding_size": args.embedding_size,
            "layers": args.layers,
            "cell": args.cell,
        },
        "command line",
    )
    text = read_text(default_corpus_path("generate", "shakespeare.txt.gz"))
    tokenizer = build_tokenizer(config, text, "", log=lambda *_: None)
    torch.manual_seed(0)
    model = build_model(config, tokenizer.vocab_size)
    extras = LanguageModelTask.extras_for(config, tokenizer, unknown_trained=False)
    return checkpoint_payload("language_model", config, model.state_dict(), extras)


def eager_loop(model, tokenizer, prompts: list[str], tokens: int, seed: int) -> list[str]:
    """Sampling as one would write it in plain torch."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.tensor([tokenizer.encode(p) for p in prompts])  # prompts of equal length
    out = []
    with torch.no_grad():
        features, state = model(ids[:, :-1])
        token = ids[:, -1:]
        for _ in range(tokens):
            features, state = model(token, state)
            probs = model.log_probs(features[:, -1]).exp_()
            probs[:, :4] = 0  # the specials, as the runtime bans them
            token = torch.multinomial(probs, 1, generator=generator)
            out.append(token)
    rows = torch.cat(out, 1).tolist()
    return [tokenizer.decode(row) for row in rows]


def eager_loop_plain_kernels(model, tokenizer, prompts, tokens, seed) -> list[str]:
    """The same loop with torch's oneDNN RNN kernels off (slow on one token at a time)."""
    from generate.torch_generator import plain_rnn_kernels

    with plain_rnn_kernels():
        return eager_loop(model, tokenizer, prompts, tokens, seed)


def main() -> None:
    args = parse_args()
    import torch

    from export.language_model import export_language_model
    from export.runtime import Generator
    from generate.model import model_from_checkpoint
    from generate.torch_generator import TorchGenerator
    from seq2seq.core.checkpoint import load_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    payload = load_checkpoint(args.checkpoint) if args.checkpoint else random_payload(args)
    config, model, tokenizer = model_from_checkpoint(payload, args.checkpoint or "random model")
    bundle = os.path.join(tempfile.mkdtemp(prefix="bench-lm-"), "bundle")
    export_language_model(payload, bundle)
    onnx = Generator.load(bundle, threads=args.threads or None)
    torch_generator = TorchGenerator(model, tokenizer)
    variants = {
        "onnx Generator": lambda p, s: onnx.generate(p, max_tokens=args.tokens, seed=s),
        "torch eager loop": lambda p, s: eager_loop(model, tokenizer, p, args.tokens, s),
        "torch eager loop, oneDNN off": lambda p, s: eager_loop_plain_kernels(
            model, tokenizer, p, args.tokens, s
        ),
        "torch Generator": lambda p, s: torch_generator.generate(p, max_tokens=args.tokens, seed=s),
    }
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    speeds = {(name, b): [] for name in variants for b in batch_sizes}
    for round_number in range(args.rounds + 1):  # round 0 warms up
        for batch in batch_sizes:
            prompts = [PROMPT] * batch
            for name, run in variants.items():
                started = time.perf_counter()
                texts = run(prompts, round_number)
                seconds = time.perf_counter() - started
                assert len(texts) == batch
                if round_number:
                    speeds[name, batch].append(batch * args.tokens / seconds)
    threads = args.threads or f"default ({torch.get_num_threads()} torch)"
    print(
        f"\n{config.layers}-layer {config.cell} {config.hidden_size}, embedding "
        f"{config.embedding_size}, {config.level} vocabulary of {tokenizer.vocab_size}; "
        f"{args.tokens} tokens per row after a {len(PROMPT)}-character prompt; threads "
        f"{threads}; median of {args.rounds} rounds\n"
    )
    print("| implementation | " + " | ".join(f"batch {b} (tokens/s)" for b in batch_sizes) + " |")
    print("|---|" + "---:|" * len(batch_sizes))
    for name in variants:
        cells = [f"{statistics.median(speeds[name, b]):,.0f}" for b in batch_sizes]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
