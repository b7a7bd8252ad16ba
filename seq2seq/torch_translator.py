"""Translate with the torch model through the same search code the ONNX runtime uses."""

from __future__ import annotations

import numpy as np
import torch

from export.runtime.translator import EncoderDecoderStepper, TranslatorBase
from seq2seq.core.checkpoint import load_checkpoint
from seq2seq.model import EncoderOutput, Seq2SeqModel, model_from_checkpoint


class TorchStepper(EncoderDecoderStepper):
    """The search's step function over :meth:`Seq2SeqModel.decode_step`."""

    def __init__(self, model: Seq2SeqModel, encoded: EncoderOutput):
        super().__init__(encoded.memory.size(0))
        self.model = model
        self.device = encoded.memory.device
        self.base = encoded
        self.memory, self.keys, self.mask = encoded.memory, encoded.keys, encoded.mask
        self.state = encoded.state

    def select_memory(self, rows: np.ndarray) -> None:
        index = torch.from_numpy(rows).to(self.device)
        self.memory = self.base.memory.index_select(0, index)
        self.keys = self.base.keys.index_select(0, index)
        self.mask = self.base.mask.index_select(0, index)

    def advance(self, tokens: np.ndarray, origin: np.ndarray) -> np.ndarray:
        index = torch.from_numpy(origin).to(self.device)
        # RNN state tensors are [layers, rows, hidden]; the input feed is [rows, hidden].
        state = tuple(s.index_select(1 if s.dim() == 3 else 0, index) for s in self.state)
        tokens_t = torch.from_numpy(tokens).to(self.device)
        log_probs, self.state = self.model.decode_step(
            tokens_t, state, self.memory, self.keys, self.mask
        )
        return log_probs.float().cpu().numpy()


class TorchTranslator(TranslatorBase):
    """``translate()`` exactly as :class:`export.runtime.Translator`, on the torch model."""

    def __init__(
        self, model: Seq2SeqModel, source_tokenizer, target_tokenizer, max_source_length: int
    ):
        super().__init__(source_tokenizer, target_tokenizer, max_source_length)
        self.model = model
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(
        cls, path: str, device: str = "cpu", trust: bool = False
    ) -> TorchTranslator:
        """The model of a translation checkpoint on ``device``; ``trust`` as
        :func:`seq2seq.core.checkpoint.load_checkpoint`."""
        payload = load_checkpoint(path, trust=trust, expected_kind="translation")
        _, model, source, target = model_from_checkpoint(payload, path)
        return cls(model.to(device), source, target, payload["extras"]["max_source_length"])

    @torch.no_grad()
    def start(self, src: np.ndarray, src_lengths: np.ndarray) -> TorchStepper:
        was_training = self.model.training
        self.model.eval()
        encoded = self.model.encode(
            torch.from_numpy(src).to(self.device), torch.from_numpy(src_lengths).to(self.device)
        )
        self.model.train(was_training)
        return TorchStepper(self.model, encoded)

    def translate(self, *args, **kwargs):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return super().translate(*args, **kwargs)
        finally:
            self.model.train(was_training)
