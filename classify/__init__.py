"""Text classification: a recurrent encoder reads a whole text, pooling turns it into one
vector, a linear layer into class probabilities (``python -m classify.train | evaluate |
predict``). Built on the training core (:mod:`seq2seq.core`); never imports another family.
Importing the package imports nothing heavy."""
