"""Section 6 of chapter 02: at inference BN is an affine map, so it folds into the conv or linear
layer before it (``models.fold_model``); how exact that is, and what it saves in time."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ... import data, runtime
from ...nn import models, norms
from .config import ForwardConfig


def _prepared_convnet(cfg: ForwardConfig) -> tuple[nn.Sequential, torch.Tensor]:
    """Return the small conv net with non-trivial γ, β and running statistics (from a few
    train-mode passes over MNIST batches), in eval mode, and a batch of test images."""
    x_tr, _, x_te, _ = data.tensors("mnist", n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    runtime.seed_everything(cfg.seed)
    model = models.small_convnet()
    with torch.no_grad():
        for bn in models.bn_layers(model):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.3)
        model.train()
        for start in range(0, 3 * 64, 64):
            model(x_tr[start: start + 64])
    images = x_te[: cfg.timing_batch]
    if len(images) < cfg.timing_batch:  # a small test subset: repeat it to fill the batch
        images = images.repeat(-(-cfg.timing_batch // len(images)), 1, 1, 1)[: cfg.timing_batch]
    return model.eval(), images


def fold_check(cfg: ForwardConfig) -> dict:
    """Return max |folded − unfolded| of the small conv net's eval outputs (absolute, and relative
    to the largest output) and max |bn(x) − (scale·x + shift)| of one BN layer (``bn_affine``)."""
    model, images = _prepared_convnet(cfg)
    folded = models.fold_model(model)
    with torch.inference_mode():
        ref, out = model(images), folded(images)
        bn = model[1]
        h = model[0](images)
        scale, shift = norms.bn_affine(bn)
        affine = (bn(h) - (h * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1))).abs().max()
    return {"max |folded − unfolded|": (out - ref).abs().max().item(),
            "largest |output|": ref.abs().max().item(),
            "max |bn(x) − (scale·x + shift)|": affine.item(),
            "layers before": len(model), "layers after": len(folded)}


def fold_timing(cfg: ForwardConfig) -> list[dict]:
    """Return the median inference time of the conv net on one batch, unfolded and folded
    (channels_last, inference_mode; printed, not asserted: timings depend on the machine).

    The two networks run alternately, so that a machine busy with other work slows both alike."""
    device = runtime.default_device()
    model, images = _prepared_convnet(cfg)
    nets = {"conv → BN (unfolded)": model, "BN folded into conv": models.fold_model(model)}
    images = images.to(device).contiguous(memory_format=torch.channels_last)
    nets = {k: v.to(device).to(memory_format=torch.channels_last) for k, v in nets.items()}

    def run(net: nn.Module) -> None:
        with torch.inference_mode():
            net(images)

    # one warm-up round: allocations and lazy initialisation are not what we time
    times = runtime.alternating_medians({k: functools.partial(run, net) for k, net in nets.items()},
                                        cfg.timing_repeats, warmup=1, device=device)
    rows = [{"network": k, "median ms per batch": v * 1e3} for k, v in times.items()]
    base = rows[0]["median ms per batch"]
    for row in rows:
        row["speed-up"] = base / row["median ms per batch"]
    return rows
