"""Shared training core (data, recurrent layers, training loop, checkpoints) and translation.

Entry points: ``python -m seq2seq.train``, ``python -m seq2seq.translate``,
``python -m seq2seq.evaluate``. Importing the package imports nothing heavy.
"""
