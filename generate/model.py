"""The RNN language model: embedding -> stacked LSTM/GRU/RNN -> (projection) -> output layer.

The recurrent state is passed in and out explicitly, as in pytorch/examples'
word_language_model: training carries it across windows of a long text, the exported step graph
takes and returns it, and sampling threads it from token to token.
"""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.core.recurrent import StackedRNN, initialize_weights, locked_dropout


class RNNLanguageModel(nn.Module):
    """Predicts the next token of a text from the tokens so far.

    With ``tie_embeddings`` the output layer reuses the embedding matrix; when ``hidden_size``
    differs from ``embedding_size`` a linear projection hidden -> embedding comes first (as in
    AWD-LSTM), so tying never constrains the sizes."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embedding_size: int = 128,
        hidden_size: int = 512,
        num_layers: int = 2,
        dropout: float = 0.1,
        embedding_dropout: float = 0.0,
        tie_embeddings: bool = False,
        init: str = "xavier",
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = StackedRNN(cell, embedding_size, hidden_size, num_layers, dropout)
        needs_projection = tie_embeddings and hidden_size != embedding_size
        self.projection = nn.Linear(hidden_size, embedding_size) if needs_projection else None
        self.output_size = embedding_size if tie_embeddings else hidden_size
        self.output = nn.Linear(self.output_size, vocab_size)
        initialize_weights(self, init)
        if tie_embeddings:
            # after the init: Xavier over the output layer's [vocab, dim] would be far smaller
            # than the embedding's own N(0, 1/dim)
            self.output.weight = self.embedding.weight

    @property
    def state_size(self) -> int:
        """Tensors in a state: 2 for LSTM (h, c), 1 otherwise."""
        return self.rnn.state_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> tuple:
        """The zero state: ``state_size`` tensors [num_layers, batch, hidden]."""
        return tuple(
            torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device)
            for _ in range(self.state_size)
        )

    def forward(
        self, tokens: torch.Tensor, state: tuple | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """``tokens``: [batch, time]; ``state``: tensors [num_layers, batch, hidden] (None:
        zeros). Returns the features [batch, time, output_size] the output layer turns into
        logits (dropout applied in training; the loss applies ``self.output``, fused) and the
        new state."""
        embedded = locked_dropout(self.embedding(tokens), self.embedding_dropout, self.training)
        hidden, state = self.rnn(embedded, state)
        if self.projection is not None:
            hidden = self.projection(hidden)
        return locked_dropout(hidden, self.dropout, self.training), state

    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """Features [..., output_size] -> log-probabilities [..., vocab] (float32)."""
        return torch.log_softmax(self.output(features).float(), dim=-1)


def build_model(config, vocab_size: int) -> RNNLanguageModel:
    """An :class:`RNNLanguageModel` from a LanguageModelConfig."""
    return RNNLanguageModel(
        vocab_size=vocab_size,
        cell=config.cell,
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        num_layers=config.layers,
        dropout=config.dropout,
        embedding_dropout=config.embedding_dropout,
        tie_embeddings=config.tie_embeddings,
        init=config.init,
    )


def model_from_checkpoint(payload: dict, origin: str) -> tuple:
    """The config, model (eval mode, on CPU) and tokenizer of a language-model checkpoint
    ``payload`` (from :func:`seq2seq.core.checkpoint.load_checkpoint`); ``origin`` names it in
    errors. The one way inference code rebuilds a trained model."""
    from export.runtime.tokenizers import tokenizer_from_state
    from generate.config import LanguageModelConfig
    from seq2seq.core.config import config_from_dict

    config = config_from_dict(LanguageModelConfig, payload["config"], origin)
    tokenizer = tokenizer_from_state(payload["extras"]["tokenizer"])
    model = build_model(config, tokenizer.vocab_size)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(
            f"{origin}: the weights do not fit the model its config describes ({error})"
        ) from None
    return config, model.eval(), tokenizer
