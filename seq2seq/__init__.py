"""Translation: attention encoder-decoder RNNs, and the training core every family shares.

``seq2seq.core`` is the training core (config machinery, trainer, checkpoints, optimizers,
loss, recurrent layers, data reading, the command-line skeleton); the rest of the package is the
translation family built on it. Entry points: ``python -m seq2seq.train``,
``python -m seq2seq.translate``, ``python -m seq2seq.evaluate``. Importing the package imports
nothing heavy.
"""
