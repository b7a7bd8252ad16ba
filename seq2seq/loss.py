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
    """Returns (smoothed loss sum, NLL sum); gradients are computed in forward, per chunk."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, smoothing: float, chunk_size: int):
        vocab = weight.size(0)
        need_grad = any(ctx.needs_input_grad[:3])
        loss_total = hidden.new_zeros((), dtype=torch.float32)
        nll_total = hidden.new_zeros((), dtype=torch.float32)
        if need_grad:
            grad_hidden = torch.empty_like(hidden)
            grad_weight = torch.zeros_like(weight)
            grad_bias = torch.zeros_like(bias) if bias is not None else None
        for start in range(0, hidden.size(0), chunk_size):
            h = hidden[start : start + chunk_size]
            t = target[start : start + chunk_size].unsqueeze(1)
            logits = torch.addmm(bias, h, weight.t()) if bias is not None else h @ weight.t()
            log_probs = logits.sub_(torch.logsumexp(logits, dim=1, keepdim=True))
            nll = -log_probs.gather(1, t).sum()
            nll_total += nll
            loss_total += (1.0 - smoothing) * nll - smoothing * log_probs.mean(dim=1).sum()
            if need_grad:
                # d loss / d logits = softmax - smoothed target distribution
                grad = log_probs.exp_().sub_(smoothing / vocab)
                grad.scatter_add_(1, t, grad.new_full(t.shape, smoothing - 1.0))
                torch.mm(grad, weight, out=grad_hidden[start : start + chunk_size])
                grad_weight.addmm_(grad.t(), h)
                if grad_bias is not None:
                    grad_bias += grad.sum(0)
        if need_grad:
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


def output_loss(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                target: torch.Tensor, smoothing: float = 0.0, fused: bool | None = None,
                chunk_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
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
