"""The attention decoder: stacked RNN + Luong attention, with optional input feeding."""

from __future__ import annotations

import torch
from torch import nn

from seq2seq.attention import LuongAttention
from seq2seq.core.recurrent import StackedRNN


class AttentionDecoder(nn.Module):
    """Luong-style decoder: the RNN runs first, attention is applied to its output, and the
    attentional vector ``tanh(W [h; context])`` feeds the output layer.

    Without input feeding the RNN does not depend on attention, so training runs it over the
    whole target sequence in one call (fast, cuDNN/oneDNN friendly). With input feeding the
    previous attentional vector is concatenated to the next input, which forces a loop over
    time steps.

    State: the RNN state tensors ([layers, batch, hidden] each), plus the previous attentional
    vector [batch, hidden] when input feeding is on.
    """

    def __init__(
        self,
        cell: str,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        memory_size: int,
        attention: str = "general",
        dropout: float = 0.0,
        input_feeding: bool = False,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_feeding = input_feeding
        rnn_input = embedding_size + (hidden_size if input_feeding else 0)
        self.rnn = StackedRNN(cell, rnn_input, hidden_size, num_layers, dropout)
        self.attention = LuongAttention(attention, hidden_size, memory_size)
        self.combine = nn.Linear(hidden_size + memory_size, hidden_size, bias=False)

    def _attend(self, output, keys, memory, mask):
        context, _ = self.attention(output, keys, memory, mask)
        return torch.tanh(self.combine(torch.cat([output, context], dim=2)))

    def forward(
        self,
        embedded: torch.Tensor,
        state: tuple,
        memory: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
    ):
        """``embedded``: [batch, tgt_len, embedding]; ``memory``: [batch, src_len, memory];
        ``keys``: [batch, src_len, key]; ``mask``: [batch, src_len].
        Returns attentional vectors [batch, tgt_len, hidden] and the new state."""
        if not self.input_feeding:
            output, rnn_state = self.rnn(embedded, state)
            return self._attend(output, keys, memory, mask), rnn_state
        *rnn_state, feed = state
        rnn_state = tuple(rnn_state)
        masks = self.rnn.make_masks(embedded)
        outputs = []
        for t in range(embedded.size(1)):
            step_input = torch.cat([embedded[:, t], feed], dim=1)
            output, rnn_state = self.rnn.cell_step(step_input, rnn_state, masks)
            attentional = self._attend(output.unsqueeze(1), keys, memory, mask)
            feed = attentional.squeeze(1)
            outputs.append(attentional)
        return torch.cat(outputs, dim=1), (*rnn_state, feed)
