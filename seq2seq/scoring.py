"""Corpus scores with sacrebleu (BLEU and chrF, default settings). No torch."""

from __future__ import annotations


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """sacrebleu BLEU and chrF with default settings, and their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": bleu.corpus_score(hypotheses, [references]).score,
        "chrf": chrf.corpus_score(hypotheses, [references]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
