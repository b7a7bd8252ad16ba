"""The training core shared by every model family (translation, language models, ...).

Modules: ``config`` (dataclass configs filled from YAML and flags), ``trainer`` (the loop and the
``Task`` protocol a family implements), ``checkpoint`` (the one checkpoint contract), ``optim``,
``loss``, ``recurrent`` (layers and state layout), ``batching``, ``text_files``, ``metrics``,
``plotting``, ``hardware`` (device, mixed precision) and ``cli`` (the command-line skeleton).
It builds on the torch-free runtime (tokenizers, search) and on nothing above it. Importing the
package imports nothing heavy.
"""
