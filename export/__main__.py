"""``python -m export --checkpoint CKPT --out DIR [--quantize int8] [--opset N]``"""

from __future__ import annotations

import argparse
import sys

from seq2seq.core.cli import run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a checkpoint of any model kind to an ONNX bundle that "
        "export.runtime loads without torch.",
    )
    parser.add_argument("--checkpoint", required=True, help="a .pt checkpoint (best.pt, last.pt)")
    parser.add_argument("--out", required=True, help="bundle directory to write (replaced)")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 quantization of the graphs' weights",
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="also read a checkpoint written before checkpoint format 2, which holds pickled "
        "Python objects (only for files you trust)",
    )
    args = parser.parse_args(argv)

    def export() -> int:
        from export.exporter import DEFAULT_OPSET, export_checkpoint

        manifest = export_checkpoint(
            args.checkpoint,
            args.out,
            args.opset or DEFAULT_OPSET,
            args.quantize,
            trust_checkpoint=args.trust_checkpoint,
        )
        files = ", ".join(sorted(manifest["files"]))
        print(f"wrote {manifest['kind']} bundle {args.out} ({files})")
        return 0

    return run_command(export)


if __name__ == "__main__":
    sys.exit(main())
