"""The recurrent encoder: a stack of (bi)directional RNN layers over the source embeddings."""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.core.recurrent import locked_dropout, make_rnn, reverse_padded


class RNNEncoder(nn.Module):
    """Stacked RNN encoder; bidirectional layers concatenate a forward and a backward RNN.

    The backward RNN reads each sentence reversed *within its own length*
    (:func:`reverse_padded`), and the forward RNN never looks ahead, so padding never changes
    the outputs at real positions: a sentence encodes the same alone and in a padded batch.
    This needs no ``pack_padded_sequence``, which ONNX export does not support.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if bidirectional and hidden_size % 2:
            raise ValueError(
                f"a bidirectional encoder needs an even hidden_size, got {hidden_size}"
            )
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.dropout = dropout
        direction_size = hidden_size // 2 if bidirectional else hidden_size
        self.forward_layers = nn.ModuleList(
            make_rnn(cell, input_size if i == 0 else hidden_size, direction_size)
            for i in range(num_layers)
        )
        self.backward_layers = nn.ModuleList(
            make_rnn(cell, input_size if i == 0 else hidden_size, direction_size)
            for i in range(num_layers if bidirectional else 0)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """``x``: [batch, src_len, input] embedded source (dropout already applied),
        ``lengths``: [batch] real lengths.

        Returns ``memory`` [batch, src_len, hidden] (junk at padded positions: mask it) and
        ``summary`` [batch, hidden]: the top layer's forward output at the last real token
        concatenated with its backward output at the first token."""
        for i, forward_layer in enumerate(self.forward_layers):
            if i > 0:
                x = locked_dropout(x, self.dropout, self.training)
            forward_out, _ = forward_layer(x)
            if self.bidirectional:
                backward_out, _ = self.backward_layers[i](reverse_padded(x, lengths))
                x = torch.cat([forward_out, reverse_padded(backward_out, lengths)], dim=2)
            else:
                x = forward_out
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.size(2))
        at_last = x.gather(1, last).squeeze(1)
        if self.bidirectional:
            half = self.hidden_size // 2
            summary = torch.cat([at_last[:, :half], x[:, 0, half:]], dim=1)
        else:
            summary = at_last
        return x, summary
