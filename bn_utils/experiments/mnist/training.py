"""The training loop of a ``StackedMLP``: plain SGD with a learning rate per model, each model on
its own minibatch order, evaluations on a schedule, diverged models stopped, checkpoints."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ... import data, runtime, train
from ...stacked_mlp import StackedMLP, per_model_loss


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
                progress: str | None = None) -> dict:
    """Train every model of ``stack`` with plain SGD (learning rate ``lr[s]``) on minibatches of
    ``(x, y)`` drawn in the order of ``data.batches(..., seed=seeds[s])``; return NumPy arrays.

    ``eval_fn(stack)`` (run in eval mode without gradients at ``eval_steps``) returns per-model
    metrics, arrays with a leading model axis; they come back stacked as ``(evals, S, ...)``.
    A model whose loss diverges (``train.is_diverged``: NaN, infinite, or far above its first
    minibatch's) stops there (its learning rate is set to 0 and its later metrics are NaN)
    while the others go on. With ``checkpoint``, the state is saved
    every ``checkpoint_every`` steps and a restarted run resumes from it.
    """
    n_models = stack.n_models
    if len(seeds) != n_models:
        raise ValueError(f"need one seed per model: {len(seeds)} seeds for {n_models} models")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    device = x.device
    step_size = torch.as_tensor(lr, dtype=torch.float32, device=device).expand(n_models).clone()
    hist = {"log_step": [], "train_loss": [], "eval_step": [], "evals": {},
            "diverged_at": [None] * n_models, "start_loss": None, "train_seconds": 0.0,
            "eval_seconds": 0.0}
    start = 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = train.load_checkpoint(ckpt)   # NumPy arrays were stored as lists
        stack.load_state_dict(state["stack"])
        hist, start, step_size = state["hist"], state["step"], state["step_size"].to(device)
        hist["train_loss"] = [np.asarray(v, dtype=np.float32) for v in hist["train_loss"]]
        hist["evals"] = {k: [np.asarray(v, dtype=np.float32) for v in vs]
                         for k, vs in hist["evals"].items()}
    streams = [data.batches(x, y, batch_size, seed=s) for s in seeds]
    for stream in streams:
        stream.skip(start)
    wanted = set(eval_steps)

    def run_eval(step: int) -> None:
        t0 = time.perf_counter()
        with torch.inference_mode(), runtime.eval_mode(stack):
            metrics = {k: torch.as_tensor(v).float().cpu().numpy() for k, v in eval_fn(stack).items()}
        for i, at in enumerate(hist["diverged_at"]):
            if at is not None:
                for v in metrics.values():
                    v[i] = np.nan
        hist["eval_step"].append(step)
        for k, v in metrics.items():
            hist["evals"].setdefault(k, []).append(v)
        hist["eval_seconds"] += time.perf_counter() - t0

    if eval_fn is not None and start == 0 and 0 in wanted:
        run_eval(0)
    params = list(stack.parameters())
    running, since_log = torch.zeros(n_models, device=device), 0
    bar = None
    if progress and os.environ.get("BN_PROGRESS", "1") != "0":
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=progress, leave=False, mininterval=1.0)
    stack.train()
    t_start = time.perf_counter()
    for step in range(start, steps):
        idx = torch.stack([stream.next_indices() for stream in streams])   # (S, B)
        losses = per_model_loss(stack(x[idx]), y[idx])
        if hist["start_loss"] is None:
            hist["start_loss"] = losses.detach().cpu().tolist()
        grads = torch.autograd.grad(losses.sum(), params, allow_unused=True)
        with torch.no_grad():
            neg = (-step_size).view(n_models, 1, 1)   # every parameter is (S, ., .)
            for p, g in zip(params, grads):
                if g is not None:   # None: hidden biases of BN-only stacks, BN of BN-free ones
                    p.addcmul_(neg, g)
        running += losses.detach()
        since_log += 1
        done = step + 1
        if done % log_every == 0 or done == steps:
            mean = (running / since_log).cpu().numpy()
            running.zero_()
            since_log = 0
            hist["log_step"].append(done)
            hist["train_loss"].append(mean)
            for i in np.flatnonzero(train.is_diverged(mean, hist["start_loss"])):
                if hist["diverged_at"][i] is None:
                    hist["diverged_at"][i] = done
                    step_size[i] = 0.0
        if eval_fn is not None and (done in wanted or done == steps):
            hist["train_seconds"] += time.perf_counter() - t_start
            run_eval(done)
            t_start = time.perf_counter()
        if bar is not None:
            bar.update(1)
        if ckpt is not None and checkpoint_every and done % checkpoint_every == 0 and done < steps:
            hist["train_seconds"] += time.perf_counter() - t_start
            t_start = time.perf_counter()
            train.save_checkpoint(ckpt, {"stack": stack.state_dict(), "hist": hist, "step": done,
                         "step_size": step_size})
    hist["train_seconds"] += time.perf_counter() - t_start
    if bar is not None:
        bar.close()
    out = {"log_step": np.array(hist["log_step"]), "train_loss": np.array(hist["train_loss"]),
           "eval_step": np.array(hist["eval_step"]),
           "diverged_at": hist["diverged_at"], "train_seconds": hist["train_seconds"],
           "eval_seconds": hist["eval_seconds"], "steps": steps,
           "model_steps_per_second": n_models * (steps - start) / max(hist["train_seconds"], 1e-9)
           if start == 0 else None}
    out.update({k: np.stack(v) for k, v in hist["evals"].items()})
    return out
