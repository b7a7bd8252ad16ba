"""The HTTP service: ``python -m export.serve --bundle DIR [--bundle NAME=DIR ...]``.

One process serves every bundle it is given, of any kind the registry knows
(:mod:`export.serve.registry`), with dynamic batching per model (:mod:`export.serve.batcher`).
It builds on the torch-free runtime only (numpy + onnxruntime + sentencepiece) plus the
``serve`` extra (Starlette, uvicorn, prometheus-client); the runtime never imports it
(import-linter checks both, pyproject.toml). Importing this package imports nothing heavy.

Modules: ``errors`` (the HTTP errors a request can get), ``request_body`` (reading and checking
JSON bodies), ``metrics`` (Prometheus), ``batcher`` (the scheduler), ``service`` (models, the
served-kind contract, running rows), one route module per model kind (``translate``,
``generate``), ``registry`` (the kinds served), ``app`` (the Starlette application) and
``__main__`` (the command).
"""
