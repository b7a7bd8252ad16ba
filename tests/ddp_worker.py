"""A ``train`` command that also records each process's gradient norms, for
tests/test_distributed.py (run under torchrun)::

    python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py OUT_DIR TRAIN_ARGS...

trains with ``python -m seq2seq.train TRAIN_ARGS`` and writes the gradient norm this process
computed at every update to ``OUT_DIR/grad_norms.RANK.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seq2seq.core.trainer import Trainer  # noqa: E402
from seq2seq.train import main  # noqa: E402


def run() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    norms = []
    original = Trainer._train_step

    def recording(self, batch):
        stats = original(self, batch)
        norms.append(stats["grad_norm"])
        return stats

    Trainer._train_step = recording
    code = main(argv)
    with open(os.path.join(out, f"grad_norms.{os.environ['RANK']}.json"), "w") as f:
        json.dump(norms, f)
    return code


if __name__ == "__main__":
    sys.exit(run())
