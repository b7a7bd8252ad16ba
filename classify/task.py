"""Text classification as a task for :class:`seq2seq.core.trainer.Trainer`: batches of texts,
the (class-weighted) cross-entropy, and validation scores.

``train_step`` returns the loss summed over the batch's texts (weighted per class with
``class_weights: balanced``) and ``targets`` = texts, so the trainer's mean over an update is
the same however the update is split into micro-batches or processes. Model selection is on
validation macro-F1 (higher is better).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from classify.data import LabelledTexts, label_counts, text_batches
from classify.model import RNNClassifier
from classify.scores import classification_scores
from export.runtime.classifier import encode_texts, pad_ids
from export.runtime.tokenizers import Tokenizer


def balanced_weights(counts: np.ndarray) -> np.ndarray:
    """n / (classes x count) per class: [classes] float32; a class without training texts
    gets weight 0 (it has no loss to weigh)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


class ClassificationTask:
    kind = "classification"
    selection_metric = "macro_f1"
    higher_is_better = True

    def __init__(
        self,
        config,
        model: RNNClassifier,
        tokenizer: Tokenizer,
        labels: list[str],
        train: LabelledTexts,
        valid: LabelledTexts,
        log=print,
    ):
        self.config = config
        self.model = model
        self.device = next(model.parameters()).device
        self.tokenizer = tokenizer
        self.labels = labels
        self.train_ids = encode_texts(tokenizer, train.texts, config.max_length, config.lowercase)
        self.train_targets = np.asarray(
            [labels.index(label) for label in train.labels], dtype=np.int64
        )
        self.train_lengths = np.asarray([len(ids) for ids in self.train_ids], dtype=np.int64)
        self.valid_texts = valid.texts
        self.valid_ids = encode_texts(tokenizer, valid.texts, config.max_length, config.lowercase)
        self.valid_targets = np.asarray(
            [labels.index(label) for label in valid.labels], dtype=np.int64
        )
        counts = label_counts(train.labels, labels)
        self.class_weights = None
        if config.class_weights == "balanced":
            self.class_weights = torch.from_numpy(balanced_weights(counts)).to(self.device)
        cut = int((self.train_lengths >= config.max_length).sum())
        log(
            f"training: {len(train):,} texts, {int(self.train_lengths.sum()):,} tokens "
            f"(mean {self.train_lengths.mean():.1f}; {cut} cut to max_length "
            f"{config.max_length}); validation: {len(valid):,} texts; classes: "
            + ", ".join(f"{name} {count}" for name, count in zip(labels, counts.tolist()))
        )

    def _batch(self, encoded: list[list[int]], indices) -> tuple[torch.Tensor, torch.Tensor]:
        ids, lengths = pad_ids([encoded[i] for i in indices])
        return torch.from_numpy(ids).to(self.device), torch.from_numpy(lengths).to(self.device)

    # ----------------------------------------------------------------- training

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return text_batches(self.train_lengths, self.config.batch_size, self.config.seed, epoch)

    def start_epoch(self, epoch: int) -> None:
        """Nothing carries over between epochs."""

    def train_step(self, batch: np.ndarray):
        ids, lengths = self._batch(self.train_ids, batch)
        targets = torch.from_numpy(self.train_targets[batch]).to(self.device)
        logits = self.model(ids, lengths).float()
        loss_sum = F.cross_entropy(
            logits,
            targets,
            weight=self.class_weights,
            reduction="sum",
            label_smoothing=self.config.label_smoothing,
        )
        nll_sum = F.cross_entropy(logits.detach(), targets, reduction="sum")
        stats = {
            "loss_sum": float(loss_sum.detach()),
            "nll_sum": float(nll_sum),
            "targets": len(batch),
            "throughput_tokens": int(lengths.sum()),
        }
        return loss_sum, stats

    # ----------------------------------------------------------------- evaluation

    def validation_probabilities(self) -> np.ndarray:
        """Probabilities of every validation text: [texts, classes], in batches of similar
        length."""
        order = np.argsort([len(ids) for ids in self.valid_ids], kind="stable")
        result = np.zeros((len(order), len(self.labels)), dtype=np.float32)
        size = self.config.eval_batch_size
        for start in range(0, len(order), size):
            members = order[start : start + size]
            ids, lengths = self._batch(self.valid_ids, members)
            logits = self.model(ids, lengths).float()
            result[members] = torch.softmax(logits, 1).cpu().numpy()
        return result

    def evaluate(self) -> dict:
        probabilities = self.validation_probabilities()
        scores = classification_scores(self.valid_targets, probabilities.argmax(1), self.labels)
        picked = probabilities[np.arange(len(probabilities)), self.valid_targets]
        nll = float(-np.log(np.maximum(picked, 1e-12)).mean())
        return {"macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"], "nll": nll}

    # ----------------------------------------------------------------- checkpoint

    def checkpoint_extras(self) -> dict:
        return {"tokenizer": self.tokenizer.state(), "labels": list(self.labels)}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing carries over between batches."""
