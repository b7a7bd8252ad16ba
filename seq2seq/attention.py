"""Luong attention: dot, general (bilinear) and concat (additive) scores."""

from __future__ import annotations

import torch
from torch import nn

ATTENTIONS = ("dot", "general", "concat")


class LuongAttention(nn.Module):
    """Scores decoder outputs against the encoder memory and returns the context vectors.

    The memory-side projection is computed once per sentence by :meth:`precompute_keys` (it is
    an output of the exported encoder graph), so each decoding step only does the query side.
    """

    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(
                f"unknown attention {kind!r} (expected one of {', '.join(ATTENTIONS)})"
            )
        if kind == "dot" and query_size != memory_size:
            raise ValueError(
                f"dot attention needs decoder hidden_size == encoder output size "
                f"({query_size} != {memory_size}); use general or concat"
            )
        self.kind = kind
        if kind == "general":
            self.key_projection = nn.Linear(memory_size, query_size, bias=False)
        elif kind == "concat":
            self.key_projection = nn.Linear(memory_size, query_size, bias=False)
            self.query_projection = nn.Linear(query_size, query_size, bias=True)
            self.score_vector = nn.Linear(query_size, 1, bias=False)

    def precompute_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """``memory``: [batch, src_len, memory] -> keys [batch, src_len, key]."""
        if self.kind == "dot":
            return memory
        return self.key_projection(memory)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``query``: [batch, tgt_len, query]; ``keys``: [batch, src_len, key];
        ``memory``: [batch, src_len, memory]; ``mask``: [batch, src_len] True at real tokens.
        Returns context [batch, tgt_len, memory] and weights [batch, tgt_len, src_len]."""
        if self.kind == "concat":
            hidden = torch.tanh(keys.unsqueeze(1) + self.query_projection(query).unsqueeze(2))
            scores = self.score_vector(hidden).squeeze(3)
        else:
            # keys @ query^T rather than query @ keys^T: the same scores, but the exported
            # step graph then transposes the one-row query, not the whole [src_len, key] keys
            scores = torch.bmm(keys, query.transpose(1, 2)).transpose(1, 2)
        scores = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=2).to(memory.dtype)
        return torch.bmm(weights, memory), weights
