"""``python -m export.serve``: serve bundles over HTTP with dynamic batching.

    python -m export.serve --bundle runs/bible/bundle --bundle lm=runs/shakespeare/bundle \\
        [--host 127.0.0.1] [--port 8080] [--max-batch-size 32] [--max-wait-ms 5] \\
        [--max-queue 1024] [--timeout-s 30] [--device cpu|cuda] [--threads N]

Routes: POST /v1/translate, POST /v1/generate, GET /health, /ready, /metrics, /v1/models.
A missing or bad bundle, a kind this service does not serve, a bad flag or a port in use is one
``error:`` line and exit status 2. SIGTERM (or Ctrl-C) stops accepting connections, finishes the
requests in flight and exits 0 (130 after Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m export.serve",
        description="Serve exported bundles over HTTP (translation: POST /v1/translate; "
        "language models: POST /v1/generate) with dynamic batching.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--bundle",
        action="append",
        required=True,
        metavar="[NAME=]DIR",
        help="a bundle to serve, named NAME (default: the directory's name, or its parent's "
        "for a directory called 'bundle'); repeat for several",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free)")
    parser.add_argument(
        "--max-batch-size", type=int, default=32, help="rows (sentences, prompts) per batch at most"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="after a batch of several rows, wait at most this long for the next batch to fill",
    )
    parser.add_argument(
        "--max-queue", type=int, default=1024, help="rows waiting per model at most (then 503)"
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=30.0,
        help="a request not answered (a stream: not started) in this time gets 504",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime CPU threads per graph"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=1 << 20, help="request bodies larger get 413"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level")
    return parser.parse_args(argv)


def bundle_names(specs: list[str]) -> dict[str, str]:
    """NAME=DIR or DIR -> {name: directory}; ValueError for a repeated name."""
    named: dict[str, str] = {}
    for spec in specs:
        name, sep, directory = spec.partition("=")
        if not sep:
            directory = spec
            path = os.path.normpath(os.path.abspath(spec))
            base = os.path.basename(path)
            name = os.path.basename(os.path.dirname(path)) if base == "bundle" else base
        if not name or not directory:
            raise ValueError(f"--bundle {spec!r}: expected DIR or NAME=DIR")
        if name in named:
            raise ValueError(f"--bundle: two bundles are named {name!r}; name them NAME=DIR")
        named[name] = directory
    return named


def check_limits(args: argparse.Namespace) -> None:
    for flag, value, minimum in (
        ("--max-batch-size", args.max_batch_size, 1),
        ("--max-queue", args.max_queue, 1),
        ("--max-body-bytes", args.max_body_bytes, 1),
        ("--threads", args.threads if args.threads is not None else 1, 1),
        ("--port", args.port, 0),
    ):
        if value < minimum:
            raise ValueError(f"{flag} must be at least {minimum}, got {value}")
    if args.max_wait_ms < 0 or not args.timeout_s > 0:
        raise ValueError("--max-wait-ms must be >= 0 and --timeout-s > 0")


def load_models(args: argparse.Namespace, metrics):
    """Read, check and load every bundle; BundleError / ValueError for a bad one."""
    from export.runtime.bundle import read_manifest
    from export.serve.batcher import Batcher
    from export.serve.registry import SERVED_KINDS
    from export.serve.service import ServedModel

    models = {}
    for name, directory in bundle_names(args.bundle).items():
        manifest = read_manifest(directory)
        kind = SERVED_KINDS.get(manifest["kind"])
        if kind is None:
            raise ValueError(
                f"{directory}: this service does not serve {manifest['kind']} bundles yet "
                f"(it serves: {', '.join(SERVED_KINDS)})"
            )
        runtime = kind.load(directory, args.device, args.threads)
        batcher = Batcher(
            name,
            kind.runner(runtime),
            max_batch_rows=args.max_batch_size,
            max_wait_s=args.max_wait_ms / 1000,
            max_queue_rows=args.max_queue,
            on_queue=metrics.queue_rows.labels(name).set,
            on_batch=metrics.batch_rows.labels(name).observe,
        )
        models[name] = ServedModel(name, kind, directory, runtime, batcher)
    return models


def listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as error:
        raise ValueError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def serve(argv: list[str] | None) -> int:
    args = parse_args(argv)
    check_limits(args)
    try:
        import uvicorn

        from export.serve.app import build_app
        from export.serve.metrics import ServiceMetrics
        from export.serve.server import DrainingServer
        from export.serve.service import Limits, Service
    except ImportError as error:
        raise ValueError(
            f"the service needs the serve extra ({error.name} is missing): "
            "pip install 'rnn-seq-toolkit[serve]'"
        ) from None
    registry = ServiceMetrics()
    limits = Limits(
        max_batch_rows=args.max_batch_size,
        max_wait_s=args.max_wait_ms / 1000,
        max_queue_rows=args.max_queue,
        timeout_s=args.timeout_s,
        max_body_bytes=args.max_body_bytes,
    )
    service = Service(load_models(args, registry), limits)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        build_app(service, registry),
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=args.timeout_s + 5,
    )
    server = DrainingServer(config)
    print(
        f"serving {service.listing()} on http://{host}:{port} "
        f"(max batch {args.max_batch_size}, max wait {args.max_wait_ms:g} ms)",
        file=sys.stderr,
        flush=True,
    )
    server.run(sockets=[sock])
    return EXIT_INTERRUPTED if signal.SIGINT in server.signals else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        return serve(argv)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
