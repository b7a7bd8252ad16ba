"""Label-smoothed cross-entropy over the output layer, fused on CPU.

The output layer (hidden -> vocabulary) and its softmax dominate training time on CPU. The fused
path computes logits, loss and the gradients of the output layer chunk by chunk in the forward
pass, so the [tokens, vocabulary] logits never exist in full and are not walked over again by
separate log-softmax and backward kernels; on a 2-core CPU this makes a whole training step
about 25% faster (see docs/BENCHMARKS.md). On GPU the plain path is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class _FusedLinearCrossEntropy(torch.autograd.Function):
    """Returns (smoothed loss sum, NLL sum); gradients are computed in forward, per chunk.

    Only two passes touch the [chunk, vocab] logits besides the matrix products: ``exp`` and a
    row sum. Everything else is folded into small tensors: with ``p = exp(z) / s`` and the
    smoothed target ``q = (1 - e) onehot + e / V``, the gradient ``p - q`` multiplies ``W`` and
    ``h``; the ``1 / s`` scaling is applied to the [chunk, hidden] side, the one-hot part is a
    row gather / index_add, and the uniform part a rank-one correction applied once.
    Logits are exponentiated without subtracting the row maximum (they are far below the
    float32 limit in a sane model); a chunk that overflows is redone with the shift.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, smoothing: float, chunk_size: int):
        vocab, size = weight.shape
        need_grad = any(ctx.needs_input_grad[:3])
        weight_sum = weight.sum(0)  # [hidden]: sum of the logits = h . weight_sum + bias_sum
        bias_sum = bias.sum() if bias is not None else 0.0
        loss_total = hidden.new_zeros((), dtype=torch.float32)
        nll_total = hidden.new_zeros((), dtype=torch.float32)
        if need_grad:
            grad_hidden = torch.empty_like(hidden)
            # column ``size`` accumulates the bias gradient in the same matrix product
            grad_weight_bias = weight.new_zeros(vocab, size + 1)

        def logits(h):
            return torch.addmm(bias, h, weight.t()) if bias is not None else h @ weight.t()

        for start in range(0, hidden.size(0), chunk_size):
            h = hidden[start : start + chunk_size]
            t = target[start : start + chunk_size]
            z = logits(h)  # [chunk, vocab]
            target_logit = z.gather(1, t.unsqueeze(1)).squeeze(1)
            total = z.exp_().sum(1)
            shift = 0.0
            if not (torch.isfinite(total).all() and (total > 1e-30).all()):
                z = logits(h)
                shift = z.amax(1)
                total = z.sub_(shift.unsqueeze(1)).exp_().sum(1)
            log_normalizer = total.log() + shift
            nll = log_normalizer - target_logit
            mean_logit = (h @ weight_sum + bias_sum) / vocab
            nll_total += nll.sum()
            loss_total += (
                (1.0 - smoothing) * nll + smoothing * (log_normalizer - mean_logit)
            ).sum()
            if need_grad:
                inverse = total.reciprocal().unsqueeze(1)  # [chunk, 1]
                grad_h = torch.mm(z, weight).mul_(inverse)
                grad_h.sub_(weight.index_select(0, t), alpha=1.0 - smoothing)
                grad_h.sub_(weight_sum, alpha=smoothing / vocab)
                grad_hidden[start : start + chunk_size] = grad_h
                grad_weight_bias.addmm_(z.t(), torch.cat([h * inverse, inverse], 1))
                ones = torch.ones_like(inverse)
                grad_weight_bias.index_add_(0, t, torch.cat([h, ones], 1), alpha=smoothing - 1.0)
        if need_grad:
            uniform = torch.cat([hidden.sum(0), hidden.new_full((1,), hidden.size(0))])
            grad_weight_bias.sub_(uniform.unsqueeze(0), alpha=smoothing / vocab)
            grad_weight = grad_weight_bias[:, :size].contiguous()
            grad_bias = grad_weight_bias[:, size].contiguous() if bias is not None else None
            ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.mark_non_differentiable(nll_total)
        return loss_total, nll_total

    @staticmethod
    def backward(ctx, grad_loss, grad_nll):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return (
            grad_hidden * grad_loss,
            grad_weight * grad_loss,
            grad_bias * grad_loss if grad_bias is not None else None,
            None,
            None,
            None,
        )


def output_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    target: torch.Tensor,
    smoothing: float = 0.0,
    fused: bool | None = None,
    chunk_size: int = 512,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over tokens of the label-smoothed loss and of the plain NLL.

    ``hidden``: [tokens, hidden] (padding already removed); ``weight``: [vocab, hidden];
    ``bias``: [vocab]; ``target``: [tokens]. ``fused`` defaults to True on CPU."""
    if fused is None:
        fused = hidden.device.type == "cpu" and hidden.dtype == torch.float32
    if fused:
        return _FusedLinearCrossEntropy.apply(hidden, weight, bias, target, smoothing, chunk_size)
    log_probs = F.log_softmax(F.linear(hidden, weight, bias).float(), dim=-1)
    nll = -log_probs.gather(1, target.unsqueeze(1)).sum()
    loss = (1.0 - smoothing) * nll - smoothing * log_probs.mean(dim=1).sum()
    return loss, nll.detach()
