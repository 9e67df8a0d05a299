"""Section 4 of chapter 02: train vs eval. In training an example's output depends on its batch
mates; how much, against the batch size."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ... import data, runtime
from ...training import train
from ...nn import models, norms
from .config import ForwardConfig, bn_mlp, one_thread


def stacked_train_forward(model: nn.Sequential, batches: torch.Tensor) -> torch.Tensor:
    """Return the train-mode outputs of ``model`` on K independent batches (K, B, D) at once,
    each normalised with its own statistics; the running statistics are not touched."""
    h = batches
    for layer in model:
        if models.is_bn_layer(layer):
            h = norms.batch_statistics(h, layer.eps, dims=[1])[0]   # over each batch's B rows
            if layer.weight is not None:
                h = h * layer.weight
            if layer.bias is not None:
                h = h + layer.bias
        else:
            h = layer(h)  # Linear and elementwise nonlinearities act on the last dim
    return h


def batch_dependence(model: nn.Sequential, examples: torch.Tensor, pool: torch.Tensor,
                     batch_sizes, draws: int, seed: int = 0) -> dict:
    """Return how the train-mode output of each example varies with its batch mates.

    For every batch size N, each example goes into ``draws`` batches with N − 1 mates drawn from
    ``pool``. Returns ``outputs`` (sizes, examples, draws, classes), the eval-mode outputs
    (examples, classes) and ``spread``: per batch size, the std over draws averaged over classes
    and examples."""
    gen = torch.Generator().manual_seed(seed)
    # The layers before the first BN see one example at a time: run them once on the pool.
    first_bn = next(i for i, m in enumerate(model) if models.is_bn_layer(m))
    head, tail = model[:first_bn], model[first_bn:]
    per_size = []
    with torch.no_grad():
        pool_h, examples_h = head(pool), head(examples)
        for b in batch_sizes:
            outs = []
            for ex in examples_h:
                mates = pool_h[torch.randint(len(pool_h), (draws, b - 1), generator=gen)]
                batch = torch.cat([ex.expand(draws, 1, -1), mates], dim=1)
                outs.append(stacked_train_forward(tail, batch)[:, 0])
            per_size.append(torch.stack(outs))
        with runtime.eval_mode(model):
            eval_out = model(examples)
    outputs = torch.stack(per_size).cpu()  # (sizes, examples, draws, classes)
    eval_out = eval_out.cpu()
    spread = outputs.std(2).mean((1, 2))
    offset = (outputs.mean(2) - eval_out).abs().mean((1, 2))
    return {"batch_sizes": np.array(batch_sizes), "outputs": outputs.numpy(),
            "eval_outputs": eval_out.numpy(), "spread": spread.numpy(), "offset": offset.numpy()}


@one_thread
def measure_batch_dependence(cfg: ForwardConfig) -> dict:
    """Train the BN MLP for ``cfg.steps`` steps, then return its ``batch_dependence`` on
    ``cfg.spread_examples`` test images (batch mates from the training set) and its accuracy."""
    device = runtime.default_device()
    x_tr, y_tr, x_te, y_te = data.mnist(cfg, device, seed=cfg.seed)
    model = bn_mlp(cfg, device=device)
    hist = train.fit(model, data.batches(x_tr, y_tr, cfg.batch_size, seed=cfg.seed),
                     steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
                     progress="BN MLP")
    out = batch_dependence(model, x_te[: cfg.spread_examples], x_tr, cfg.spread_batch_sizes,
                           cfg.spread_draws, cfg.seed)
    out["labels"] = y_te[: cfg.spread_examples].cpu().numpy()
    # Store the one example the figure shows, not every logit of every draw (megabytes at full).
    out["example_logits"] = out.pop("outputs")[:, 0, :, int(out["labels"][0])]  # (sizes, draws)
    out["test_accuracy"] = train.accuracy(model, x_te, y_te)
    out["train_seconds"] = hist.seconds
    return out
