"""Translation as a task for :class:`seq2seq.core.trainer.Trainer`: batches, loss, validation."""

from __future__ import annotations

import math

import numpy as np
import torch

from export.runtime.tokenizers import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from seq2seq.core.batching import pad_batch, token_batches
from seq2seq.core.loss import output_loss
from seq2seq.data import filter_pairs
from seq2seq.model import Seq2SeqModel
from seq2seq.scoring import corpus_scores
from seq2seq.torch_translator import TorchTranslator


class TranslationTask:
    kind = "translation"

    def __init__(
        self,
        config,
        model: Seq2SeqModel,
        source_tokenizer: Tokenizer,
        target_tokenizer: Tokenizer,
        train_src: list[str],
        train_tgt: list[str],
        valid_src: list[str],
        valid_tgt: list[str],
        log=print,
    ):
        self.config = config
        self.model = model
        self.device = next(model.parameters()).device
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.selection_metric = config.selection_metric
        self.higher_is_better = config.selection_metric != "nll"
        src_ids = [source_tokenizer.encode(s) for s in train_src]
        tgt_ids = [target_tokenizer.encode(t) for t in train_tgt]
        keep, report = filter_pairs(src_ids, tgt_ids, config.max_length, config.max_length_ratio)
        log(f"training data: {report}")
        if not keep:
            raise ValueError(
                "no training pairs left after filtering; check the data and max_length"
            )
        self.src = [src_ids[i] for i in keep]
        self.tgt = [tgt_ids[i] for i in keep]
        # + 1 for the EOS (source) and the BOS/EOS shift (target)
        self.lengths = np.asarray([max(len(s), len(t)) + 1 for s, t in zip(self.src, self.tgt)])
        self.valid_src = valid_src
        self.valid_tgt = valid_tgt
        self.valid_src_ids = [source_tokenizer.encode(s) for s in valid_src]
        self.valid_tgt_ids = [target_tokenizer.encode(t) for t in valid_tgt]
        self.translator = TorchTranslator(
            model, source_tokenizer, target_tokenizer, config.max_length
        )

    # ----------------------------------------------------------------- batches

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        return token_batches(self.lengths, self.config.batch_tokens, self.config.seed, epoch)

    def start_epoch(self, epoch: int) -> None:
        pass

    def _tensors(self, src_ids, tgt_ids):
        src, src_lengths = pad_batch(src_ids, PAD_ID, suffix=EOS_ID)
        tgt_in, _ = pad_batch(tgt_ids, PAD_ID, prefix=BOS_ID)
        tgt_out, _ = pad_batch(tgt_ids, PAD_ID, suffix=EOS_ID)
        to = lambda a: torch.from_numpy(a).to(self.device, non_blocking=True)  # noqa: E731
        return to(src), to(src_lengths), to(tgt_in), to(tgt_out)

    def _loss(self, src, src_lengths, tgt_in, tgt_out, smoothing: float):
        encoded = self.model.encode(src, src_lengths)
        attentional = self.model.decode(tgt_in, encoded)
        real = tgt_out != PAD_ID
        hidden = attentional[real]
        target = tgt_out[real]
        output = self.model.output
        loss_sum, nll_sum = output_loss(hidden, output.weight, output.bias, target, smoothing)
        return loss_sum, nll_sum, int(target.numel()), int(src_lengths.sum())

    def train_step(self, batch: np.ndarray):
        src, src_lengths, tgt_in, tgt_out = self._tensors(
            [self.src[i] for i in batch], [self.tgt[i] for i in batch]
        )
        loss_sum, nll_sum, tokens, src_tokens = self._loss(
            src, src_lengths, tgt_in, tgt_out, self.config.label_smoothing
        )
        stats = {
            "loss_sum": float(loss_sum.detach()),
            "nll_sum": float(nll_sum),
            "targets": tokens,
            "throughput_tokens": tokens + src_tokens,
        }
        return loss_sum, stats

    # ----------------------------------------------------------------- evaluation

    def valid_nll(self) -> float:
        order = np.argsort([len(s) for s in self.valid_src_ids])
        nll_total, token_total = 0.0, 0
        for start in range(0, len(order), self.config.eval_batch_size):
            rows = order[start : start + self.config.eval_batch_size]
            src_ids = [self.valid_src_ids[i][: self.config.max_length] or [EOS_ID] for i in rows]
            tgt_ids = [self.valid_tgt_ids[i] for i in rows]
            _, nll, tokens, _ = self._loss(*self._tensors(src_ids, tgt_ids), smoothing=0.0)
            nll_total += float(nll)
            token_total += tokens
        return nll_total / max(1, token_total)

    def evaluate(self) -> dict:
        nll = self.valid_nll()
        results = {"nll": nll, "ppl": math.exp(min(50.0, nll))}
        translations = self.translator.translate(
            self.valid_src,
            beam=self.config.eval_beam,
            batch_size=self.config.eval_batch_size,
            truncate=True,
        )
        hypotheses = [t.text for t in translations]
        scores = corpus_scores(hypotheses, self.valid_tgt)
        results["bleu"] = scores["bleu"]
        results["chrf"] = scores["chrf"]
        return results

    # ----------------------------------------------------------------- checkpoint

    def checkpoint_extras(self) -> dict:
        return self.extras_for(self.config, self.source_tokenizer, self.target_tokenizer)

    @staticmethod
    def extras_for(config, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer) -> dict:
        """What a translation checkpoint holds besides the weights, to rebuild the model."""
        return {
            "source_tokenizer": source_tokenizer.state(),
            "target_tokenizer": target_tokenizer.state(),
            "max_source_length": config.max_length,
        }

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
