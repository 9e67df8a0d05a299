"""Section 5b of chapter 02 (teaching code: the layer is wrong on purpose): a BN whose output is
computed only as in the eval branch, its symptoms on one batch, and training with it."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ... import data, runtime
from ...training import train
from ...nn import norms
from .config import ForwardConfig, bn_mlp, channel_stats, one_thread

# The three normalisations trained side by side.
EVAL_BRANCH_NETS = ("torch BN", "eval-branch BN (buggy)", "no BN")


class EvalBranchBatchNorm1d(nn.Module):
    """BUGGY on purpose: a hand-written BN whose output is computed only as in eval mode.

    In training it updates the running statistics from the batch, as it should, but then
    normalises with the running statistics instead of the batch's, so the output is not
    normalised per batch and no gradient flows through the batch statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return γ·(x − running mean)/sqrt(running var + ε) + β, in training too (the bug)."""
        if self.training:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * x.mean(0))
                self.running_var.mul_(1 - m).add_(m * x.var(0, correction=1))
        # BUG: this line belongs to the eval branch; training should use the batch's statistics.
        xhat = (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps)
        return self.weight * xhat + self.bias


@one_thread
def eval_branch_symptoms(cfg: ForwardConfig) -> list[dict]:
    """Return, for torch's BN, ours and the eval-branch BN on one real batch of first-layer
    pre-activations in train mode: the output's per-feature mean and std, its difference from
    torch's output and |Σ_batch ∂L/∂x| (zero when the gradient flows through the batch mean)."""
    x_tr, _, _, _ = data.mnist(cfg, seed=cfg.seed)
    runtime.seed_everything(cfg.seed)
    with torch.no_grad():
        x = nn.Linear(784, cfg.hidden[0], bias=False)(x_tr[: cfg.batch_size])
    dout = torch.randn(x.shape, generator=torch.Generator().manual_seed(cfg.seed))
    width = x.shape[1]
    layers = {"torch.nn.BatchNorm1d": nn.BatchNorm1d(width),
              "bn_utils.nn.norms.BatchNorm1d": norms.BatchNorm1d(width),
              "EvalBranchBatchNorm1d (buggy)": EvalBranchBatchNorm1d(width)}
    rows, ref = [], None
    for name, layer in layers.items():
        xi = x.clone().requires_grad_(True)
        out = layer.train()(xi)
        out.backward(dout)
        ref = out.detach() if ref is None else ref
        mean, std = channel_stats(out.detach())
        rows.append({"layer": name, "mean of output (avg |·|)": mean.abs().mean().item(),
                     "std of output (avg)": std.mean().item(),
                     "max |out − torch|": (out.detach() - ref).abs().max().item(),
                     "max |Σ ∂L/∂x| over batch": xi.grad.sum(0).abs().max().item()})
    return rows


def saturation(model: nn.Sequential, x: torch.Tensor) -> float | None:
    """Return the fraction of hidden sigmoid outputs on x (eval mode) within 0.01 of 0 or 1,
    where the sigmoid's gradient is below 0.01 (None if the model has no sigmoids)."""
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o))
             for m in model if isinstance(m, nn.Sigmoid)]
    try:
        with torch.inference_mode(), runtime.eval_mode(model):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    if not outs:
        return None  # no sigmoids (another activation): nothing to measure
    return float(np.mean([((o < 0.01) | (o > 0.99)).float().mean().item() for o in outs]))


def hidden_weight_norm(model: nn.Sequential) -> float:
    """Return the largest Frobenius norm of the weights of the hidden (non-output) linear layers."""
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    return max(m.weight.detach().norm().item() for m in linears)


@one_thread
def eval_branch_training(cfg: ForwardConfig) -> dict:
    """Train the MLP with torch's BN, the eval-branch BN and no BN, at ``cfg.lr`` and at the high
    ``cfg.bug_lr``, from the same initial weights and batches; return each run's History, with
    test accuracy, hidden weight norm and sigmoid saturation at the start and the end."""
    device = runtime.default_device()
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, device, seed=cfg.seed)
    norms_by_name = {"torch BN": "bn", "eval-branch BN (buggy)": EvalBranchBatchNorm1d,
                     "no BN": "none"}

    def eval_fn(m: nn.Module) -> dict:
        return {"test_accuracy": train.accuracy(m, x_te, y_te),
                "weight_norm": hidden_weight_norm(m), "saturation": saturation(m, x_te[:1000])}

    out = {}
    for lr in (cfg.lr, cfg.bug_lr):
        for name in EVAL_BRANCH_NETS:
            model = bn_mlp(cfg, norm=norms_by_name[name], device=device)
            hist = train.fit(model, data.batches(x_tr, y_tr, cfg.batch_size, seed=cfg.seed),
                             steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                             eval_fn=eval_fn, log_every=max(1, cfg.steps // 50),
                             progress=f"{name}, lr {lr}")
            out[f"{name} @ lr {lr:g}"] = hist.to_dict()
    return out
