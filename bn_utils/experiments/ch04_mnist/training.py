"""How chapter 04 trains a ``StackedMLP``: ``train.fit`` (the one training loop) with plain SGD
at a learning rate per model (``stacked_mlp.StackedSGD``), each model on its own minibatch order
(``data.ModelBatches``), evaluations on a schedule, diverged models stopped, checkpoints; the
history comes back as the arrays the chapter's records hold."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ... import data, runtime
from ...training import train
from ...nn.stacked_mlp import StackedMLP, StackedSGD, per_model_loss


def eval_schedule(steps: int, every: int, per_decade: int = 0) -> list[int]:
    """Return the sorted steps at which to evaluate: 0, every ``every`` steps (for the curves),
    ``per_decade`` log-spaced steps per factor of ten from step 100 on (for "steps to reach x%",
    which then has the same relative resolution early and late), and the last step."""
    points = {0, steps, *range(every, steps, every)}
    if per_decade and steps > 100:
        n = int(math.floor(per_decade * math.log10(steps / 100))) + 1
        # two significant digits: 112 -> 110, 2512 -> 2500 (which the linear grid may hold)
        points |= {int(float(f"{100 * 10 ** (i / per_decade):.2g}")) for i in range(n)}
    return sorted(p for p in points if p <= steps)


def train_stack(stack: StackedMLP, x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], *,
                steps: int, batch_size: int, lr: float | Sequence[float],
                eval_fn: Callable[[StackedMLP], dict] | None = None,
                eval_steps: Sequence[int] = (), log_every: int = 100,
                checkpoint: Path | str | None = None, checkpoint_every: int = 0,
                identity: dict | None = None, progress: str | None = None) -> dict:
    """Train every model of ``stack`` with plain SGD (learning rate ``lr[s]``) on minibatches of
    ``(x, y)`` drawn in the order of ``data.batches(..., seed=seeds[s])``; return NumPy arrays.

    ``eval_fn(stack)`` (run in eval mode without gradients at step 0, ``eval_steps`` and the
    last step) returns per-model metrics, arrays with a leading model axis; they come back
    stacked as ``(evals, S, ...)``. A model whose loss diverges (``train.is_diverged``) stops
    there (its learning rate is set to 0 and its later metrics are NaN) while the others go
    on. With ``checkpoint``, the state is saved every ``checkpoint_every`` steps and a
    restarted run resumes from it; ``identity`` (the run's chapter, name and config digest) is
    stored in it and a checkpoint of another run is refused (``train.resume_state``).
    """
    n_models = stack.n_models
    if len(seeds) != n_models:
        raise ValueError(f"need one seed per model: {len(seeds)} seeds for {n_models} models")
    rates = [float(r) for r in np.broadcast_to(np.asarray(lr, dtype=float), (n_models,))]
    batches = data.ModelBatches(x, y, batch_size, seeds)
    optimizer = StackedSGD(stack.parameters(), n_models, lr=1.0, model_lr=rates)
    resumed = checkpoint is not None and Path(checkpoint).exists()
    eval_seconds: list[float] = []

    def timed_eval(model: StackedMLP) -> dict:
        t0 = time.perf_counter()
        with torch.inference_mode(), runtime.eval_mode(model):
            out = {k: torch.as_tensor(v).float().cpu() for k, v in eval_fn(model).items()}
        eval_seconds.append(time.perf_counter() - t0)
        return out

    hist = train.fit(stack, batches, steps=steps, optimizer=optimizer, loss_fn=per_model_loss,
                     eval_fn=timed_eval if eval_fn is not None else None, eval_steps=eval_steps,
                     log_every=log_every, checkpoint=checkpoint,
                     checkpoint_every=checkpoint_every, identity=identity,
                     stop_model=optimizer.stop_model, progress=progress or False)
    # fit's clock starts after the evaluation at step 0
    in_loop = sum(eval_seconds[0 if resumed else 1:])
    return _arrays(hist, n_models, steps, log_every, eval_steps, sum(eval_seconds),
                   hist.seconds - in_loop, resumed)


def _arrays(hist: train.History, n_models: int, steps: int, log_every: int,
            eval_steps: Sequence[int], eval_seconds: float, train_seconds: float,
            resumed: bool) -> dict:
    """Return a stacked run's history as the chapter's arrays: ``train_loss`` (logs, S), each
    metric (evals, S, ...) with NaN from a model's divergence on; a run that stopped because
    every model diverged is filled with NaN to the last step, as if it had gone on."""
    diverged_at = hist.diverged_at if isinstance(hist.diverged_at, list) else [None] * n_models
    log_step = sorted({*range(log_every, steps + 1, log_every), steps})
    eval_step = sorted({0, steps, *(s for s in eval_steps if 0 <= s <= steps)})
    if not hist.diverged:
        log_step, eval_step = hist.step, hist.eval_step
    loss = np.full((len(log_step), n_models), np.nan, dtype=np.float32)
    loss[: len(hist.loss)] = np.asarray(hist.loss, dtype=np.float32).reshape(-1, n_models)
    out = {"log_step": np.array(log_step), "train_loss": loss, "eval_step": np.array(eval_step),
           "diverged_at": diverged_at, "train_seconds": train_seconds,
           "eval_seconds": eval_seconds, "steps": steps,
           "model_steps_per_second": None if resumed else
           n_models * steps / max(train_seconds, 1e-9)}
    for k, v in hist.evals.items():
        v = np.asarray(v, dtype=np.float32)
        full = np.full((len(eval_step), *v.shape[1:]), np.nan, dtype=np.float32)
        full[: len(v)] = v
        for i, at in enumerate(diverged_at):
            if at is not None:
                full[np.asarray(eval_step) >= at, i] = np.nan
        out[k] = full
    return out
