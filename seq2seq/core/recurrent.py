"""Recurrent building blocks: cell factory, stacked RNN with locked dropout, padded reversal, init.

Layers are separate single-layer torch RNN modules rather than one multi-layer module, so that
dropout between layers can be *locked* (one mask per sequence, the same at every time step, as
in variational RNN dropout): it regularises better than fresh noise per step and costs far fewer
random numbers, which matters on CPU where drawing them is slow.
"""

from __future__ import annotations

import torch
from torch import nn

CELLS = ("lstm", "gru", "rnn")


def make_rnn(cell: str, input_size: int, hidden_size: int) -> nn.RNNBase:
    """One batch-first recurrent layer of the given cell type."""
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, batch_first=True)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, batch_first=True)
    if cell == "rnn":
        return nn.RNN(input_size, hidden_size, batch_first=True, nonlinearity="tanh")
    raise ValueError(f"unknown cell {cell!r} (expected one of {', '.join(CELLS)})")


def locked_dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A dropout mask for ``x`` [batch, time, dim] shared across time: [batch, 1, dim]."""
    mask = torch.empty(x.size(0), 1, x.size(2), dtype=x.dtype, device=x.device)
    return mask.bernoulli_(1.0 - p).div_(1.0 - p)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence. ``x``: [batch, time, dim]."""
    if not training or p <= 0:
        return x
    return x * locked_dropout_mask(x, p)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x`` [batch, time, dim] within its own length [batch], leaving
    the padding where it is. Its own inverse. Lets a backward RNN read every sentence from its
    real last token without packing, so padding never reaches the real positions."""
    time = x.size(1)
    steps = torch.arange(time, device=x.device).unsqueeze(0)  # [1, time]
    last = lengths.unsqueeze(1) - 1  # [batch, 1]
    index = torch.where(steps <= last, last - steps, steps)  # [batch, time]
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.size(2)))


class StackedRNN(nn.Module):
    """``num_layers`` single-layer RNNs with locked dropout between them.

    State is a tuple of tensors [num_layers, batch, hidden]: ``(h, c)`` for LSTM, ``(h,)``
    otherwise."""

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0
    ):
        super().__init__()
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.layers = nn.ModuleList(
            make_rnn(cell, input_size if i == 0 else hidden_size, hidden_size)
            for i in range(num_layers)
        )

    @property
    def state_size(self) -> int:
        return 2 if self.cell == "lstm" else 1

    def make_masks(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        """Dropout masks for the inputs of layers 1.. (for a step-by-step loop that must keep
        the same mask at every step). ``x``: [batch, time, hidden]-shaped reference."""
        if not self.training or self.dropout <= 0:
            return [None] * (self.num_layers - 1)
        shape = x.new_empty(x.size(0), 1, self.hidden_size)
        return [locked_dropout_mask(shape, self.dropout) for _ in range(self.num_layers - 1)]

    def cell_step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, ...], masks: list | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """One time step through every layer with the fused cell functions on the layers' own
        weights: much cheaper per step than a sequence call of length 1, which a decoder loop
        (input feeding) makes once per target token. ``x``: [batch, input];
        returns output [batch, hidden] and the new state (same layout as :meth:`forward`)."""
        new_h, new_c = [], []
        for i, layer in enumerate(self.layers):
            if i > 0 and masks is not None and masks[i - 1] is not None:
                x = x * masks[i - 1].squeeze(1)
            weights = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
            if self.cell == "lstm":
                x, c = torch.lstm_cell(x, (state[0][i], state[1][i]), *weights)
                new_c.append(c)
            elif self.cell == "gru":
                x = torch.gru_cell(x, state[0][i], *weights)
            else:
                x = torch.rnn_tanh_cell(x, state[0][i], *weights)
            new_h.append(x)
        if self.cell == "lstm":
            return x, (torch.stack(new_h), torch.stack(new_c))
        return x, (torch.stack(new_h),)

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, ...] | None = None,
        masks: list | None = None,
    ):
        """``x``: [batch, time, input]; returns output [batch, time, hidden] and the new state."""
        if masks is None:
            masks = self.make_masks(x)
        new_h, new_c = [], []
        for i, layer in enumerate(self.layers):
            if i > 0 and masks[i - 1] is not None:
                x = x * masks[i - 1]
            if state is None:
                layer_state = None
            elif self.cell == "lstm":
                layer_state = (state[0][i : i + 1], state[1][i : i + 1])
            else:
                layer_state = state[0][i : i + 1]
            x, final = layer(x, layer_state)
            if self.cell == "lstm":
                new_h.append(final[0])
                new_c.append(final[1])
            else:
                new_h.append(final)
        if self.cell == "lstm":
            return x, (torch.cat(new_h, 0), torch.cat(new_c, 0))
        return x, (torch.cat(new_h, 0),)


def initialize_weights(module: nn.Module, scheme: str = "xavier") -> None:
    """Xavier-uniform input and output weights, orthogonal recurrent weights, zero biases
    (LSTM forget-gate bias 1), embeddings N(0, 1/dim). ``pytorch`` keeps torch's defaults."""
    if scheme == "pytorch":
        return
    if scheme != "xavier":
        raise ValueError(f"unknown init {scheme!r} (xavier, pytorch)")
    for sub in module.modules():
        if isinstance(sub, nn.RNNBase):
            gates = {"LSTM": 4, "GRU": 3}.get(type(sub).__name__, 1)
            for name, param in sub.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(param)
                elif name.startswith("weight_hh"):
                    for chunk in param.data.chunk(gates, 0):
                        nn.init.orthogonal_(chunk)
                elif name.startswith("bias"):
                    nn.init.zeros_(param)
                    if gates == 4 and name.startswith("bias_ih"):
                        size = param.size(0) // 4
                        nn.init.ones_(param.data[size : 2 * size])
        elif isinstance(sub, nn.Linear):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            # Xavier over [vocab, dim] would make embeddings tiny for large vocabularies (and,
            # tied to the output layer, logits near zero): a slow start. Scale by dim instead.
            nn.init.normal_(sub.weight, std=sub.embedding_dim**-0.5)


def batch_first(state) -> list[torch.Tensor]:
    """Recurrent state tensors [layers, rows, hidden] -> [rows, layers, hidden], the layout of
    exported graphs and of the runtime (rows first, so they can be gathered and batched);
    tensors of another rank (an input feed [rows, hidden]) stay as they are."""
    return [s.transpose(0, 1) if s.dim() == 3 else s for s in state]


def layers_first(state) -> tuple:
    """The inverse of :func:`batch_first`: [rows, layers, hidden] -> [layers, rows, hidden]
    (contiguous, as torch's RNN modules need)."""
    return tuple(s.transpose(0, 1).contiguous() if s.dim() == 3 else s for s in state)


def state_names(cell: str, input_feeding: bool = False) -> list[str]:
    """The names of a recurrent state's tensors in exported graphs: h (and c for an LSTM), and
    feed for an input-feeding decoder."""
    names = ["h", "c"] if cell == "lstm" else ["h"]
    return names + (["feed"] if input_feeding else [])
