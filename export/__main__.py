"""``python -m export --checkpoint CKPT --out DIR [--quantize int8] [--opset N]``"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a checkpoint (translation or language model) to an ONNX bundle "
        "that export.runtime loads without torch.",
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
    args = parser.parse_args(argv)
    from export.exporter import DEFAULT_OPSET, export_checkpoint

    try:
        manifest = export_checkpoint(
            args.checkpoint, args.out, args.opset or DEFAULT_OPSET, args.quantize
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    files = ", ".join(sorted(manifest["files"]))
    print(f"wrote {manifest['kind']} bundle {args.out} ({files})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
