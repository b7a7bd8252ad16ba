"""Language models for text generation: char-, word- and subword-level RNNs.

Entry points: ``python -m generate.train`` (train, export, print a sample),
``python -m generate.sample`` (stream text from a bundle) and ``python -m generate.evaluate``
(bits per character and per-word perplexity of a bundle on a text). Sampling and evaluation
run on the torch-free runtime (:class:`export.runtime.Generator`). Importing the package
imports nothing heavy.
"""
