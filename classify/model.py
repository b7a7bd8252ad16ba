"""The recurrent text classifier: embedding -> stacked (bidirectional) LSTM/GRU/RNN -> pooling
over the real tokens -> dropout -> linear -> class logits.

Padding never reaches a real position: the forward direction reads left to right, so what
follows a text cannot change it, and the backward direction reads each text reversed within its
own length (:func:`seq2seq.core.recurrent.reverse_padded`), so it starts at the text's real
last token; pooling masks the padded positions out. A text therefore gets the same
probabilities alone as in any padded batch, with no ``pack_padded_sequence`` (which does not
export to ONNX).
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.core.recurrent import initialize_weights, locked_dropout, make_rnn, reverse_padded


class TextEncoder(nn.Module):
    """``layers`` recurrent layers, each optionally bidirectional (the next layer reads both
    directions), with locked dropout between layers."""

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
    ):
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.dropout = dropout
        self.output_size = hidden_size * self.directions
        sizes = [input_size] + [self.output_size] * (layers - 1)
        self.forward_layers = nn.ModuleList(make_rnn(cell, n, hidden_size) for n in sizes)
        self.backward_layers = nn.ModuleList(
            make_rnn(cell, n, hidden_size) for n in sizes if bidirectional
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x``: [batch, time, input], ``lengths``: [batch] -> states [batch, time, output_size]
        (forward and backward halves side by side; padded positions hold junk)."""
        for i, layer in enumerate(self.forward_layers):
            if i > 0:
                x = locked_dropout(x, self.dropout, self.training)
            outputs = [layer(x)[0]]
            if self.directions == 2:
                backward = self.backward_layers[i](reverse_padded(x, lengths))[0]
                outputs.append(reverse_padded(backward, lengths))
            x = torch.cat(outputs, 2) if len(outputs) > 1 else outputs[0]
        return x


class RNNClassifier(nn.Module):
    """Reads a batch of padded texts, returns class logits."""

    def __init__(
        self,
        vocab_size: int,
        classes: int,
        cell: str = "lstm",
        embedding_size: int = 128,
        hidden_size: int = 192,
        layers: int = 1,
        bidirectional: bool = True,
        pooling: str = "attention",
        attention_size: int = 128,
        dropout: float = 0.5,
        embedding_dropout: float = 0.0,
        token_dropout: float = 0.0,
        init: str = "xavier",
    ):
        super().__init__()
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout)
        self.embedding_dropout = embedding_dropout
        self.token_dropout = token_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.encoder = TextEncoder(
            cell, embedding_size, hidden_size, layers, bidirectional, dropout
        )
        size = self.encoder.output_size
        if pooling == "attention":
            self.attention = nn.Sequential(
                nn.Linear(size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1)
            )
        elif pooling not in ("last", "mean", "max"):
            raise ValueError(f"unknown pooling {pooling!r} (last, mean, max, attention)")
        self.output = nn.Linear(size, classes)
        initialize_weights(self, init)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens`` [batch, time] -> embeddings [batch, time, embedding] with, in training,
        whole tokens dropped (zeroed) and locked dropout."""
        embedded = self.embedding(tokens)
        if self.training and self.token_dropout > 0:
            keep = torch.empty_like(embedded[..., :1]).bernoulli_(1.0 - self.token_dropout)
            embedded = embedded * keep
        return locked_dropout(embedded, self.embedding_dropout, self.training)

    def pool(self, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``states`` [batch, time, size], ``lengths`` [batch] -> one vector per text
        [batch, size], from the real positions only."""
        steps = torch.arange(states.size(1), device=states.device).unsqueeze(0)
        real = steps < lengths.unsqueeze(1)  # [batch, time]
        if self.pooling == "last":
            last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, states.size(2))
            final = states.gather(1, last).squeeze(1)  # the forward half is final here
            if not self.bidirectional:
                return final
            # the backward direction ends at the first token
            return torch.cat([final[:, : self.hidden_size], states[:, 0, self.hidden_size :]], 1)
        if self.pooling == "mean":
            summed = (states * real.unsqueeze(2).to(states.dtype)).sum(1)
            return summed / lengths.unsqueeze(1).to(states.dtype)
        if self.pooling == "max":
            return states.masked_fill(~real.unsqueeze(2), float("-inf")).amax(1)
        scores = self.attention(states).squeeze(2).float()  # [batch, time]
        weights = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=1)
        return torch.bmm(weights.unsqueeze(1).to(states.dtype), states).squeeze(1)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``tokens`` [batch, time] (padded with any id), ``lengths`` [batch] (each >= 1) ->
        logits [batch, classes]."""
        states = self.encoder(self.embed(tokens), lengths)
        return self.output(self.dropout(self.pool(states, lengths)))


def build_model(config, vocab_size: int, classes: int) -> RNNClassifier:
    """An :class:`RNNClassifier` from a ClassifierConfig."""
    return RNNClassifier(
        vocab_size=vocab_size,
        classes=classes,
        cell=config.cell,
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        layers=config.layers,
        bidirectional=config.bidirectional,
        pooling=config.pooling,
        attention_size=config.attention_size,
        dropout=config.dropout,
        embedding_dropout=config.embedding_dropout,
        token_dropout=config.token_dropout,
        init=config.init,
    )


def model_from_checkpoint(payload: dict, origin: str) -> tuple:
    """The config, model (eval mode, on CPU), tokenizer and label names of a classification
    checkpoint ``payload`` (from :func:`seq2seq.core.checkpoint.load_checkpoint`); ``origin``
    names it in errors. The one way inference code rebuilds a trained classifier."""
    from classify.config import ClassifierConfig
    from export.runtime.tokenizers import tokenizer_from_state
    from seq2seq.core.config import config_from_dict

    config = config_from_dict(ClassifierConfig, payload["config"], origin)
    tokenizer = tokenizer_from_state(payload["extras"]["tokenizer"])
    labels = list(payload["extras"]["labels"])
    model = build_model(config, tokenizer.vocab_size, len(labels))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(
            f"{origin}: the weights do not fit the model its config describes ({error})"
        ) from None
    return config, model.eval(), tokenizer, labels
