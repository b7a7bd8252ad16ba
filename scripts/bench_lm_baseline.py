"""A plain PyTorch character-level LSTM language model, as a quality baseline for ours.

The model and loop of pytorch/examples' word_language_model, at characters: a 2-layer 512-unit
LSTM with tied 512-wide embeddings, dropout 0.2, the text cut into 64 columns read 128
characters at a time with the hidden state carried over, Adam at 2e-3, gradient clipping at
0.25. It trains for ``--minutes`` of wall time, then reports bits per character on ``--test``,
read exactly as ``python -m generate.evaluate`` reads it (16 contiguous streams, each starting
after a line break), so the figure compares with the toolkit's. ::

    python scripts/bench_lm_baseline.py --train ../shared/data/shakespeare/train.txt \\
        --test ../shared/data/shakespeare/test.txt --minutes 12
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", required=True, help="training text")
    parser.add_argument("--test", required=True, help="text to report bits per character on")
    parser.add_argument("--minutes", type=float, default=12.0, help="training wall time")
    parser.add_argument("--hidden", type=int, default=512, help="LSTM units (and embedding)")
    parser.add_argument("--batch", type=int, default=64, help="columns read side by side")
    parser.add_argument("--bptt", type=int, default=128, help="characters per update")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch
    from torch import nn

    from export.runtime import split_into_streams

    torch.manual_seed(args.seed)
    train_text = Path(args.train).read_text(encoding="utf-8")
    test_text = Path(args.test).read_text(encoding="utf-8")
    chars = sorted(set(train_text))
    index = {c: i + 1 for i, c in enumerate(chars)}  # 0: a character unseen in training
    vocab = len(chars) + 1

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.2)
            self.embedding = nn.Embedding(vocab, args.hidden)
            self.rnn = nn.LSTM(args.hidden, args.hidden, 2, dropout=0.2, batch_first=True)
            self.output = nn.Linear(args.hidden, vocab)
            self.output.weight = self.embedding.weight

        def forward(self, x, state=None):
            out, state = self.rnn(self.drop(self.embedding(x)), state)
            return self.output(self.drop(out)), state

    model = CharLSTM()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    data = torch.tensor([index[c] for c in train_text])
    columns = len(data) // args.batch
    data = data[: columns * args.batch].view(args.batch, columns)
    loss_function = nn.CrossEntropyLoss()

    started = time.monotonic()
    characters, state, position, epoch = 0, None, 0, 1
    model.train()
    while time.monotonic() - started < args.minutes * 60:
        if position + 1 >= columns:
            position, state, epoch = 0, None, epoch + 1
        length = min(args.bptt, columns - 1 - position)
        x = data[:, position : position + length]
        y = data[:, position + 1 : position + 1 + length]
        position += length
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = model(x, state)
        loss = loss_function(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        characters += x.numel()
    seconds = time.monotonic() - started

    model.eval()
    ids = [index.get(c, 0) for c in test_text]
    inputs, targets, mask = split_into_streams(ids, index["\n"], 16)
    total = 0.0
    with torch.no_grad():
        state = None
        for start in range(0, inputs.shape[1], args.bptt):
            window = slice(start, start + args.bptt)
            logits, state = model(torch.from_numpy(inputs[:, window]), state)
            log_probs = torch.log_softmax(logits, -1)
            picked = log_probs.gather(2, torch.from_numpy(targets[:, window]).unsqueeze(2))
            total -= float(picked.squeeze(2)[torch.from_numpy(mask[:, window])].sum())
    bits = total / int(np.sum(mask)) / math.log(2)
    print(
        f"plain PyTorch 2x{args.hidden} LSTM: {characters:,} characters in {seconds / 60:.1f} "
        f"minutes ({characters / seconds:,.0f} characters/s, {characters / data.numel():.2f} "
        f"epochs); {args.test}: {bits:.3f} bits per character"
    )


if __name__ == "__main__":
    main()
