"""One small training loop, shared by every chapter.

``fit`` runs SGD steps over an iterator of minibatches, evaluates every ``eval_every`` steps,
records the metrics in a :class:`History`, stops (and records ``diverged``) when the loss becomes
NaN or infinite, can checkpoint and resume, and calls hooks at chosen steps. It never touches the
global RNG in between steps, so measuring (hooks) does not change the trajectory.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def default_device() -> torch.device:
    """Return ``BN_DEVICE`` if set, else CUDA when available, else the CPU."""
    name = os.environ.get("BN_DEVICE")
    if name:
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"BN_DEVICE={name!r} but CUDA is not available here")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def cpu_threads(n: int):
    """Use ``n`` torch threads while the block (or decorated function) runs on a CPU, then
    restore the setting; ``n = 0`` or a GPU device leaves it as is. Small tensors gain nothing
    from a second OpenMP thread, and on cores busy with other work its spin-waiting costs much."""
    if n <= 0 or default_device().type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch.Generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class History:
    """Metrics of a run: train loss every ``log_every`` steps, eval metrics every ``eval_every``."""

    step: list = field(default_factory=list)          # steps at which train loss was logged
    loss: list = field(default_factory=list)          # mean train loss over the last interval
    eval_step: list = field(default_factory=list)     # steps at which eval ran
    evals: dict = field(default_factory=dict)         # metric name -> list, aligned with eval_step
    lr: list = field(default_factory=list)            # learning rate at each logged step
    measure_step: list = field(default_factory=list)  # steps at which hooks returned measurements
    measures: dict = field(default_factory=dict)      # name -> list, aligned with measure_step
    diverged: bool = False
    diverged_at: int | list | None = None           # a list (one per model) for stacked models
    steps_done: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Return the history as plain lists (JSON-ready)."""
        return asdict(self)

    def split(self, k: int) -> list["History"]:
        """Return the K histories of a stacked run (losses and metrics are lists of K values),
        each cut where its model diverged, as that model's own run would have stopped; each gets
        its share (1/K) of the wall time."""
        out = []
        for i in range(k):
            at = self.diverged_at[i] if isinstance(self.diverged_at, list) else None
            logs = [j for j, s in enumerate(self.step) if at is None or s <= at]
            evals = [j for j, s in enumerate(self.eval_step) if at is None or s < at]
            out.append(History(
                step=[self.step[j] for j in logs], loss=[self.loss[j][i] for j in logs],
                eval_step=[self.eval_step[j] for j in evals],
                evals={name: [v[j][i] for j in evals] for name, v in self.evals.items()},
                lr=[self.lr[j][i] if isinstance(self.lr[j], list) else self.lr[j] for j in logs],
                diverged=at is not None, diverged_at=at,
                steps_done=at if at is not None else self.steps_done, seconds=self.seconds / k))
        return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Return the top-1 accuracy of ``model`` on ``(x, y)`` in eval mode (mode restored after)."""
    return evaluate(model, x, y, batch_size)["accuracy"]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> dict:
    """Return ``{"accuracy", "loss"}`` of ``model`` on ``(x, y)`` in eval mode (mode restored)."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            logits = model(x[start: start + batch_size]).float()
            target = y[start: start + batch_size]
            loss += F.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    model.train(was_training)
    return {"accuracy": correct / len(x), "loss": loss / len(x)}


def _tqdm():
    """Return tqdm's notebook bar where Jupyter widgets are installed, else its text bar."""
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


def _without_side_effects(hook: Callable, step: int, model: nn.Module, x, y):
    """Run a measuring hook, then restore the RNG, BN buffers, gradients and mode it may touch;
    return what the hook returned."""
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    out = hook(step, model, x, y)
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)
    with torch.no_grad():
        for k, v in model.named_buffers():
            v.copy_(buffers[k])
    for p in model.parameters():
        p.grad = None
    model.train()
    return out


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically: a run killed while saving keeps the previous one."""
    from .results import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def fit(model: nn.Module, batches: Iterator, *, steps: int,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable = F.cross_entropy,
        lr_at: Callable[[int], float] | None = None,
        eval_fn: Callable[[nn.Module], dict] | None = None,
        eval_every: int = 0,
        log_every: int = 50,
        hooks: dict[int, list[Callable]] | Callable | None = None,
        checkpoint: Path | str | None = None,
        checkpoint_every: int = 0,
        progress: bool | str = True) -> History:
    """Train ``model`` for ``steps`` optimizer steps and return its :class:`History`.

    ``lr_at(step)`` sets the learning rate before each step (a schedule); ``loss_fn`` returns a
    number, or one loss per model for a stacked network (:mod:`bn_utils.stacked`: their sum is
    minimised, each is logged, a model that diverges is recorded and the others go on; see
    :meth:`History.split`); ``eval_fn(model)`` returns a dict of metrics (numbers, or one per
    model), run at step 0, every ``eval_every`` steps and at the end;
    ``hooks(step, model, x, y)`` runs before the step at every step (or, given a dict, at the
    listed steps) and must not change the model; a hook that returns a dict of numbers (or lists)
    has it recorded in ``History.measures`` (checkpointed with the rest); with ``checkpoint`` the
    run saves its state every ``checkpoint_every`` steps and resumes from it when restarted. The progress bar is off when
    ``BN_PROGRESS=0`` (the book's builds set it).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    hist = History()
    start = 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        hist = History(**state["history"])
        start = state["step"]
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        # the caller re-creates the batch iterator; skip what the killed run consumed
        if hasattr(batches, "skip"):
            batches.skip(start)
        else:
            for _ in range(start):
                next(batches)

    def run_eval(step: int) -> None:
        if eval_fn is None:
            return
        hist.eval_step.append(step)
        for k, v in eval_fn(model).items():   # a number, or one per model (a list or tensor)
            v = v.tolist() if isinstance(v, torch.Tensor) else v
            hist.evals.setdefault(k, []).append([float(x) for x in v] if isinstance(v, list) else float(v))

    if start == 0:
        run_eval(0)
    bar = None
    if progress and os.environ.get("BN_PROGRESS", "1") != "0":
        bar = _tqdm()(total=steps, initial=start, desc=progress if isinstance(progress, str) else "train",
                   leave=False, mininterval=1.0)
    running, since_log = None, 0
    t_start = time.perf_counter()
    model.train()
    for step in range(start, steps):
        x, y = next(batches)
        if hooks is not None:
            todo = hooks.get(step, []) if isinstance(hooks, dict) else [hooks]
            measured: dict = {}
            for hook in todo:
                out = _without_side_effects(hook, step, model, x, y)
                if isinstance(out, dict):
                    measured.update(out)
            if measured:
                hist.measure_step.append(step)
                for k, v in measured.items():
                    hist.measures.setdefault(k, []).append(v)
        # a number, or a list (one per model: bn_utils.stacked.StackedSGD)
        lr = lr_at(step) if lr_at is not None else optimizer.param_groups[0]["lr"]
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
        loss = loss_fn(model(x), y)   # a number, or one per model of a stacked network
        optimizer.zero_grad(set_to_none=True)
        (loss.sum() if loss.ndim else loss).backward()
        optimizer.step()
        running = loss.detach().float() if running is None else running + loss.detach().float()
        since_log += 1
        done = step + 1
        if done % log_every == 0 or done == steps:
            mean_loss = (running / since_log).tolist()   # the one host sync of a log interval
            running, since_log = None, 0
            hist.step.append(done)
            hist.loss.append(mean_loss)
            hist.lr.append(lr)
            if isinstance(mean_loss, list):   # stacked models: each diverges on its own
                if hist.diverged_at is None:
                    hist.diverged_at = [None] * len(mean_loss)
                for i, v in enumerate(mean_loss):
                    if not math.isfinite(v) and hist.diverged_at[i] is None:
                        hist.diverged_at[i] = done
                if all(at is not None for at in hist.diverged_at):
                    hist.diverged, hist.steps_done = True, done
                    break
            elif not math.isfinite(mean_loss):
                hist.diverged, hist.diverged_at, hist.steps_done = True, done, done
                break
        if eval_fn is not None and eval_every and (done % eval_every == 0) and done != steps:
            run_eval(done)
        if bar is not None:
            bar.update(1)
        if ckpt is not None and checkpoint_every and done % checkpoint_every == 0 and done != steps:
            hist.steps_done = done
            hist.seconds += time.perf_counter() - t_start
            t_start = time.perf_counter()
            save_checkpoint(ckpt, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "history": hist.to_dict(), "step": done, "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None})
    else:
        hist.steps_done = steps
        run_eval(steps)
    if bar is not None:
        bar.close()
    hist.seconds += time.perf_counter() - t_start
    return hist


class Autocast(nn.Module):
    """Wrap a model so its forward runs under ``torch.autocast`` in ``dtype`` (mixed precision;
    BN layers keep float32 parameters and statistics) and returns float32 outputs, so losses and
    metrics stay in float32. ``dtype=None`` runs the model unchanged."""

    def __init__(self, model: nn.Module, dtype: torch.dtype | None):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the wrapped model's output on ``x`` as float32."""
        with torch.autocast(x.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            return self.model(x).float()


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """Return the mixed-precision dtype worth using on ``device``: bfloat16 on CUDA GPUs that
    support it (it needs no loss scaling, which ``fit`` does not do), else None (float32)."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
