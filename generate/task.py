"""Language modelling as a task for :class:`seq2seq.core.trainer.Trainer`: windows, loss and
validation.

The hidden state is carried from one window to the next (detached, so gradients stop at the
window: truncated backpropagation through time), reset at the start of every epoch and, for a
few random rows, at every window (``state_reset``), and saved in the checkpoint, so a resumed
run continues with exactly the state it had.
"""

from __future__ import annotations

import numpy as np
import torch

from export.runtime.generator import split_into_streams
from export.runtime.tokenizers import UNK_ID, Tokenizer
from generate.data import check_stream_length, encode_text, training_windows
from generate.model import RNNLanguageModel
from generate.scores import text_scores
from generate.vocabulary import newline_id
from seq2seq.core.loss import output_loss


class LanguageModelTask:
    kind = "language_model"
    selection_metric = "bits_per_char"  # comparable across levels, unlike per-token NLL
    higher_is_better = False

    def __init__(
        self,
        config,
        model: RNNLanguageModel,
        tokenizer: Tokenizer,
        train_text: str,
        valid_text: str,
        log=print,
    ):
        self.config = config
        self.model = model
        self.device = next(model.parameters()).device
        self.tokenizer = tokenizer
        self.newline_id = newline_id(tokenizer)
        self.train_ids = encode_text(tokenizer, train_text)
        check_stream_length(self.train_ids, config.batch_size, config.bptt, "the training text")
        self.unknown_trained = bool((self.train_ids == UNK_ID).any())
        self.valid_text = valid_text
        self.valid_inputs, self.valid_targets, self.valid_mask = split_into_streams(
            encode_text(tokenizer, valid_text), self.newline_id, config.eval_streams
        )
        log(
            f"training stream: {len(self.train_ids):,} tokens in {config.batch_size} rows, "
            f"windows of {config.bptt}; validation: {int(self.valid_mask.sum()):,} tokens"
        )
        self.state: tuple | None = None

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, non_blocking=True)

    # ----------------------------------------------------------------- training

    def epoch_batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return self.rank_batches(epoch, 0, 1)

    def rank_batches(
        self, epoch: int, rank: int, processes: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The windows process ``rank`` of ``processes`` reads (data-parallel training): its
        ``batch_size`` of the text's ``batch_size`` x ``processes`` contiguous rows, so that
        every process keeps carrying its own rows' state from window to window."""
        c = self.config
        check_stream_length(self.train_ids, c.batch_size, c.bptt, "the training text", processes)
        return training_windows(
            self.train_ids, c.batch_size, c.bptt, c.seed, epoch, c.state_reset, rank, processes
        )

    def start_epoch(self, epoch: int) -> None:
        self.state = None  # the rows start at new places in the text

    def train_step(self, batch: tuple[np.ndarray, np.ndarray, np.ndarray]):
        inputs, targets, reset = batch
        inputs, targets = self._tensor(inputs), self._tensor(targets)
        if self.state is not None and reset.any():
            keep = self._tensor(~reset).view(1, -1, 1)
            self.state = tuple(s * keep for s in self.state)
        features, state = self.model(inputs, self.state)
        self.state = tuple(s.detach() for s in state)
        output = self.model.output
        loss_sum, nll_sum = output_loss(
            features.reshape(-1, features.size(-1)),
            output.weight,
            output.bias,
            targets.reshape(-1),
            self.config.label_smoothing,
        )
        tokens = int(targets.numel())
        stats = {
            "loss_sum": float(loss_sum.detach()),
            "nll_sum": float(nll_sum),
            "targets": tokens,
            "throughput_tokens": tokens,
        }
        return loss_sum, stats

    # ----------------------------------------------------------------- evaluation

    def validation_nll(self) -> float:
        """Summed NLL (nats) of the validation text, read as ``eval_streams`` rows exactly as
        :meth:`export.runtime.generator.GeneratorBase.score` reads it."""
        model, bptt = self.model, self.config.bptt
        state = None
        total = 0.0
        for start in range(0, self.valid_inputs.shape[1], bptt):
            window = slice(start, start + bptt)
            inputs = self._tensor(self.valid_inputs[:, window])
            mask = self._tensor(self.valid_mask[:, window])
            targets = self._tensor(self.valid_targets[:, window])
            features, state = model(inputs, state)
            _, nll = output_loss(
                features[mask], model.output.weight, model.output.bias, targets[mask], 0.0
            )
            total += float(nll)
        return total

    def evaluate(self) -> dict:
        scores = text_scores(self.validation_nll(), int(self.valid_mask.sum()), self.valid_text)
        return {key: scores[key] for key in ("bits_per_char", "perplexity_per_word", "nll", "ppl")}

    # ----------------------------------------------------------------- checkpoint

    def checkpoint_extras(self) -> dict:
        return self.extras_for(self.config, self.tokenizer, self.unknown_trained)

    @staticmethod
    def extras_for(config, tokenizer: Tokenizer, unknown_trained: bool) -> dict:
        """What a language-model checkpoint holds besides the weights, to rebuild the model."""
        return {
            "tokenizer": tokenizer.state(),
            "level": config.level,
            "newline_id": newline_id(tokenizer),
            "unknown_trained": unknown_trained,
        }

    def state_dict(self) -> dict:
        if self.state is None:
            return {"state": None}
        return {"state": [s.cpu() for s in self.state]}

    def load_state_dict(self, state: dict) -> None:
        carried = state["state"]
        self.state = None if carried is None else tuple(s.to(self.device) for s in carried)
