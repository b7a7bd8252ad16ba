"""The attention encoder-decoder: embeddings -> encoder -> bridge -> attention decoder -> output.

:class:`Seq2SeqModel` exposes the three pieces the rest of the toolkit needs: ``encode`` (one
call per batch of sources), ``decode`` (teacher-forced training over whole target sequences) and
``decode_step`` (one token per row, for search and for the exported step graph).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seq2seq.core.recurrent import initialize_weights, locked_dropout
from seq2seq.decoders import AttentionDecoder
from seq2seq.encoders import RNNEncoder


@dataclass
class EncoderOutput:
    memory: torch.Tensor  # [batch, src_len, memory]
    keys: torch.Tensor  # [batch, src_len, key]: attention's projection of the memory
    mask: torch.Tensor  # [batch, src_len] bool, True at real tokens
    state: tuple  # the decoder's initial state (see AttentionDecoder)


class Seq2SeqModel(nn.Module):
    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        cell: str = "lstm",
        embedding_size: int = 256,
        hidden_size: int = 256,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        bidirectional: bool = True,
        attention: str = "general",
        input_feeding: bool = False,
        dropout: float = 0.3,
        embedding_dropout: float = 0.1,
        tie_embeddings: bool = True,
        share_embeddings: bool = False,
        pad_id: int = 0,
        init: str = "xavier",
    ):
        super().__init__()
        self.cell = cell
        self.decoder_layers = decoder_layers
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.pad_id = pad_id
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_size, padding_idx=pad_id)
        if share_embeddings:
            if src_vocab_size != tgt_vocab_size:
                raise ValueError(
                    "share_embeddings needs one vocabulary for both sides "
                    "(joint_vocab true and target_pieces all)"
                )
            self.tgt_embedding = self.src_embedding
        else:
            self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_size, padding_idx=pad_id)
        self.encoder = RNNEncoder(
            cell, embedding_size, hidden_size, encoder_layers, bidirectional, dropout
        )
        self.bridge_h = nn.Linear(hidden_size, decoder_layers * hidden_size)
        self.bridge_c = (
            nn.Linear(hidden_size, decoder_layers * hidden_size) if cell == "lstm" else None
        )
        self.decoder = AttentionDecoder(
            cell,
            embedding_size,
            hidden_size,
            decoder_layers,
            memory_size=hidden_size,
            attention=attention,
            dropout=dropout,
            input_feeding=input_feeding,
        )
        self.output = nn.Linear(hidden_size, tgt_vocab_size)
        initialize_weights(self, init)
        if tie_embeddings:
            if embedding_size != hidden_size:
                raise ValueError(
                    f"tie_embeddings needs embedding_size == hidden_size "
                    f"({embedding_size} != {hidden_size})"
                )
            self.output.weight = self.tgt_embedding.weight
        with torch.no_grad():
            for embedding in (self.src_embedding, self.tgt_embedding):
                embedding.weight[pad_id].zero_()

    def _embed(self, embedding: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        return locked_dropout(embedding(tokens), self.embedding_dropout, self.training)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        """``src``: [batch, src_len] ids (EOS-terminated, padded), ``src_lengths``: [batch]."""
        memory, summary = self.encoder(self._embed(self.src_embedding, src), src_lengths)
        batch = src.size(0)
        h = torch.tanh(self.bridge_h(summary)).view(batch, self.decoder_layers, -1)
        state = [h.transpose(0, 1).contiguous()]
        if self.bridge_c is not None:
            c = self.bridge_c(summary).view(batch, self.decoder_layers, -1)
            state.append(c.transpose(0, 1).contiguous())
        if self.decoder.input_feeding:
            state.append(memory.new_zeros(batch, self.hidden_size))
        steps = torch.arange(src.size(1), device=src.device).unsqueeze(0)
        mask = steps < src_lengths.unsqueeze(1)
        keys = self.decoder.attention.precompute_keys(memory)
        return EncoderOutput(memory, keys, mask, tuple(state))

    def decode(self, tgt_in: torch.Tensor, encoded: EncoderOutput) -> torch.Tensor:
        """Teacher forcing. ``tgt_in``: [batch, tgt_len] (BOS + target).
        Returns attentional vectors [batch, tgt_len, hidden], dropout applied; feed them to
        ``self.output`` (the loss does this, fused)."""
        attentional, _ = self.decoder(
            self._embed(self.tgt_embedding, tgt_in),
            encoded.state,
            encoded.memory,
            encoded.keys,
            encoded.mask,
        )
        return locked_dropout(attentional, self.dropout, self.training)

    def decode_step(
        self,
        tokens: torch.Tensor,
        state: tuple,
        memory: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple]:
        """One step for every row. ``tokens``: [rows]; state tensors [layers, rows, hidden]
        (+ feed [rows, hidden]); ``memory``/``keys``: [rows, src_len, *]; ``mask``:
        [rows, src_len]. Returns log-probabilities [rows, vocab] (float32) and the new state."""
        embedded = self.tgt_embedding(tokens.unsqueeze(1))
        attentional, state = self.decoder(embedded, state, memory, keys, mask)
        logits = self.output(attentional.squeeze(1))
        return torch.log_softmax(logits.float(), dim=-1), state


def build_model(config, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0):
    """A :class:`Seq2SeqModel` from a TranslationConfig."""
    return Seq2SeqModel(
        src_vocab_size=src_vocab_size,
        tgt_vocab_size=tgt_vocab_size,
        cell=config.cell,
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        bidirectional=config.bidirectional,
        attention=config.attention,
        input_feeding=config.input_feeding,
        dropout=config.dropout,
        embedding_dropout=config.embedding_dropout,
        tie_embeddings=config.tie_embeddings,
        share_embeddings=config.share_embeddings,
        pad_id=pad_id,
        init=config.init,
    )


def model_from_checkpoint(payload: dict, origin: str) -> tuple:
    """The config, model (eval mode, on CPU) and source and target tokenizers of a translation
    checkpoint ``payload`` (from :func:`seq2seq.core.checkpoint.load_checkpoint`); ``origin``
    names it in errors. The one way inference code rebuilds a trained model."""
    from export.runtime.tokenizers import tokenizer_from_state
    from seq2seq.config import TranslationConfig
    from seq2seq.core.config import config_from_dict

    config = config_from_dict(TranslationConfig, payload["config"], origin)
    extras = payload["extras"]
    source = tokenizer_from_state(extras["source_tokenizer"])
    target = tokenizer_from_state(extras["target_tokenizer"])
    model = build_model(config, source.vocab_size, target.vocab_size)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise ValueError(
            f"{origin}: the weights do not fit the model its config describes ({error})"
        ) from None
    return config, model.eval(), source, target
