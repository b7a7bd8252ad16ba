"""The training core shared by every model family (translation, language models, ...).

Modules: ``config`` (dataclass configs filled from YAML and flags), ``task`` (the ``Task``
protocol a family implements), ``trainer`` (the loop), ``update`` (one optimizer update over
micro-batches and processes), ``distributed`` (torchrun: the process group and the messages that
keep processes in step), ``signals`` (Ctrl-C and SIGTERM), ``checkpoint`` (the one checkpoint
contract), ``optim``, ``loss``, ``recurrent`` (layers and state layout), ``batching`` (batches
and each process's share of them), ``text_files``, ``metrics``, ``plotting``, ``hardware``
(device, mixed precision) and ``cli`` (the command-line skeleton).
It builds on the torch-free runtime (tokenizers, search) and on nothing above it. Importing the
package imports nothing heavy.
"""
