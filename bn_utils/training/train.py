"""One small training loop, shared by every chapter.

``fit`` runs SGD steps over an iterator of minibatches, evaluates every ``eval_every`` steps,
records the metrics in a :class:`History`, stops (and records ``diverged``) when the loss becomes
NaN, infinite or :data:`DIVERGENCE_FACTOR` times its starting value, can checkpoint and resume,
and calls hooks at chosen steps. It never touches the global RNG in between steps, so measuring
(hooks) does not change the trajectory. Checkpoints hold only tensors, numbers, strings, lists
and dicts, and are read with ``torch.load(weights_only=True)``: a file planted among them can
fail to load, never run code.
"""

from __future__ import annotations

import io
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import atomic_write_bytes, eval_mode

# A run whose logged mean loss exceeds this multiple of its first minibatch's loss has diverged,
# even while the loss is still finite (a loss of 1e20 is not training).
DIVERGENCE_FACTOR = 1e3


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
    diverged_at: int | list | None = None             # a list (one per model) for stacked models
    start_loss: float | list | None = None            # loss of the first minibatch, before any step
    steps_done: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Return the history as plain lists (JSON-ready)."""
        return asdict(self)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Return the top-1 accuracy of ``model`` on ``(x, y)`` in eval mode (mode restored after)."""
    return evaluate(model, x, y, batch_size)["accuracy"]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> dict:
    """Return ``{"accuracy", "loss"}`` of ``model`` on ``(x, y)`` in eval mode (mode restored)."""
    with eval_mode(model), torch.inference_mode():
        return batch_scores(model, x, y, batch_size)


def batch_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict:
    """Return ``{"accuracy", "loss"}`` of ``model`` on ``(x, y)``, fed in batches of
    ``batch_size``, in whatever mode it is in (:func:`evaluate` sets eval mode; chapter 09 scores
    BN in training mode, on its statistics of each test batch)."""
    return scores(logits(model, x, batch_size), y)


def logits(model: nn.Module, x: torch.Tensor, batch_size: int, prepare=None) -> torch.Tensor:
    """Return float32 logits of ``model`` on ``x``, fed in batches of ``batch_size`` (each passed
    through ``prepare`` first, e.g. uint8 images to normalised floats), in whatever mode it is in."""
    return torch.cat([model(prepare(xb) if prepare else xb).float()
                      for xb in x.split(batch_size)])


def correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return where the predicted class (the argmax over dim 1: ``(batch, classes)`` logits, or a
    stacked model's ``(models, classes, batch)``) is the label: the book's one accuracy rule. A row
    with a NaN or infinite logit counts as wrong (``argmax`` alone would pick the NaN, often the
    right class)."""
    return (logits.argmax(1) == y) & torch.isfinite(logits).all(1)


def scores(logits: torch.Tensor, y: torch.Tensor) -> dict:
    """Return ``{"accuracy", "loss"}`` of logits against labels (:func:`correct`)."""
    right = correct(logits, y)
    return {"accuracy": right.float().mean().item(),
            "loss": F.cross_entropy(logits, y).item()}


def _tqdm():
    """Return tqdm's notebook bar where Jupyter widgets are installed, else its text bar."""
    import importlib.util

    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


def _plain(value):
    """Return a metric as a float, or nested lists of floats (one entry per stacked model)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return float(value)


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


def is_diverged(loss, start_loss):
    """Return whether ``loss`` (a number or array) is NaN, infinite or more than
    ``DIVERGENCE_FACTOR`` times ``start_loss`` (elementwise for arrays)."""
    loss = np.asarray(loss, dtype=float)
    start = np.nan_to_num(np.asarray(start_loss, dtype=float), nan=np.inf)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(loss) | (loss > DIVERGENCE_FACTOR * np.maximum(np.abs(start), 1e-6))


def _weights_only(value):
    """Return ``value`` with NumPy arrays and scalars as lists and Python numbers, the form
    ``torch.load(weights_only=True)`` reads (tensors, numbers, strings, lists, tuples, dicts)."""
    if isinstance(value, dict):
        return {k: _weights_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_weights_only(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (a run killed while saving keeps the previous one), with NumPy
    values as lists so that :func:`load_checkpoint` can read it without unpickling code."""

    buf = io.BytesIO()
    torch.save(_weights_only(state), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path | str, map_location="cpu") -> dict:
    """Return the state saved by :func:`save_checkpoint`, read with ``weights_only=True``; raise a
    ValueError naming the file if it holds anything else (a planted pickle never runs)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"checkpoint {path} is not a plain checkpoint of this code (refused "
                         f"without running it: {first}); delete it to start the run afresh") from None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, not a dict; "
                         "delete it to start the run afresh")
    return state


def resume_state(path: Path, *, steps: int, identity: dict | None = None) -> dict:
    """Return the checkpoint at ``path`` if it belongs to this run: its ``identity`` equal to the
    one given (when one is), its step inside ``1 .. steps - 1`` and its weights finite; otherwise
    raise a ValueError naming the file and saying to delete it."""
    state = load_checkpoint(path)
    again = "delete it to start the run afresh"
    if identity is not None and state.get("identity") != identity:
        raise ValueError(f"checkpoint {path} belongs to another run ({state.get('identity')!r}, "
                         f"not {identity!r}); {again}")
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 < step < steps:
        raise ValueError(f"checkpoint {path} is at step {step!r}, outside this run's 1..{steps - 1}; "
                         f"{again}")
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise ValueError(f"checkpoint {path} has no model weights; {again}")
    for key, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not torch.isfinite(value).all():
            raise ValueError(f"checkpoint {path} has non-finite weights in {key!r}; {again}")
    return state


def fit(model: nn.Module, batches: Iterator, *, steps: int,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable = F.cross_entropy,
        lr_at: Callable[[int], float] | None = None,
        eval_fn: Callable[[nn.Module], dict] | None = None,
        eval_every: int = 0,
        eval_steps: Sequence[int] = (),
        log_every: int = 50,
        hooks: dict[int, list[Callable]] | Callable | None = None,
        checkpoint: Path | str | None = None,
        checkpoint_every: int = 0,
        identity: dict | None = None,
        stop_model: Callable[[int], None] | None = None,
        progress: bool | str = True) -> History:
    """Train ``model`` for ``steps`` optimizer steps and return its :class:`History`.

    ``lr_at(step)`` sets the learning rate before each step (for a stack, one per model).
    ``loss_fn`` returns a number, or one loss per model of a stack (:mod:`bn_utils.nn.stacked_mlp`:
    their sum is minimised, each diverges on its own, see :class:`Divergence`, and
    ``stop_model(i)`` stops model i there). ``eval_fn(model)`` returns a dict of metrics, run at
    step 0, every ``eval_every`` steps, at ``eval_steps`` and at the end. ``hooks(step, model,
    x, y)`` run before every step (or, as a dict, at its steps), must not change the model, and
    may return numbers to record in ``History.measures``. With ``checkpoint`` the run saves its
    state every ``checkpoint_every`` steps and resumes from it (``identity``, e.g. name and config
    digest, must match: :func:`resume_state`). ``BN_PROGRESS=0`` turns the progress bar off.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer")
    ckpt = Path(checkpoint) if checkpoint else None
    hist, start = History(), 0
    if ckpt is not None and ckpt.exists():
        hist, start = _resume(ckpt, model, optimizer, batches, steps=steps, identity=identity)
    divergence, wanted, losses = Divergence(hist, stop_model), set(eval_steps), _LossSum()
    if start == 0:
        _record_eval(hist, eval_fn, model, 0)
    bar = _progress_bar(progress, steps, start)
    clock = _Clock()
    model.train()
    for step in range(start, steps):
        x, y = next(batches)
        if hooks is not None:
            _record_measures(hist, hooks, step, model, x, y)
        loss, lr = _step(model, optimizer, loss_fn, lr_at, step, x, y)
        if hist.start_loss is None:
            hist.start_loss = loss.float().tolist()
        losses.add(loss)
        done = step + 1
        if (done % log_every == 0 or done == steps) and _log(hist, divergence, losses, done, lr):
            break
        if done != steps and ((eval_every and done % eval_every == 0) or done in wanted):
            _record_eval(hist, eval_fn, model, done)
        if bar is not None:
            bar.update(1)
        if ckpt is not None and checkpoint_every and done % checkpoint_every == 0 and done != steps:
            _save_unless_diverging(ckpt, model, optimizer, hist, done, identity, clock)
    else:
        hist.steps_done = steps
        _record_eval(hist, eval_fn, model, steps)
    if bar is not None:
        bar.close()
    hist.seconds += clock.lap()
    return hist


class _LossSum:
    """The losses summed since the last log, kept on the device (one host sync per interval)."""

    def __init__(self):
        self.total, self.count = None, 0

    def add(self, loss: torch.Tensor) -> None:
        self.total = loss.float() if self.total is None else self.total + loss.float()
        self.count += 1

    def pop_mean(self) -> float | list:
        """Return the mean loss (one per model for a stack) since the last call, and reset."""
        mean = (self.total / self.count).tolist()
        self.total, self.count = None, 0
        return mean


class _Clock:
    """Seconds of training, counted in laps (a checkpoint stores the seconds so far)."""

    def __init__(self):
        self.t = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.t = now - self.t, now
        return seconds


def _log(hist: History, divergence: "Divergence", losses: _LossSum, done: int, lr) -> bool:
    """Log the interval's mean loss and learning rate at step ``done``; return True to stop (the
    run, or every model of a stack, diverged)."""
    mean_loss = losses.pop_mean()
    hist.step.append(done)
    hist.loss.append(mean_loss)
    hist.lr.append(lr)
    return divergence.stops(done, mean_loss)


def _save_unless_diverging(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                           hist: History, done: int, identity: dict | None, clock: _Clock) -> None:
    """Checkpoint the run at step ``done``, unless a weight is no longer finite (diverging)."""
    if all(torch.isfinite(p).all() for p in model.parameters()):
        hist.steps_done = done
        hist.seconds += clock.lap()
        save_checkpoint(ckpt, _checkpoint_state(model, optimizer, hist, done, identity))


def _resume(ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator, *,
            steps: int, identity: dict | None) -> tuple[History, int]:
    """Return the History and step of the checkpointed run, with ``model``, ``optimizer`` and
    the RNG restored to that step and ``batches`` advanced past what the killed run consumed (the
    caller re-creates the iterator); raise a ValueError naming the file if it is not this run's."""
    state = resume_state(ckpt, steps=steps, identity=identity)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        hist = History(**state["history"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"checkpoint {ckpt} does not fit this run ({type(err).__name__}: "
                         f"{first}); delete it to start the run afresh") from None
    start = state["step"]
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if hasattr(batches, "skip"):
        batches.skip(start)
    else:
        for _ in range(start):
            next(batches)
    return hist, start


def _checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, hist: History,
                      step: int, identity: dict | None) -> dict:
    """Return what a checkpoint holds: weights, optimizer, history, step, identity and RNG."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "history": hist.to_dict(), "step": step, "identity": identity,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
          lr_at: Callable | None, step: int, x, y) -> tuple[torch.Tensor, float | list]:
    """Take one optimizer step on ``(x, y)`` at ``lr_at(step)`` (else the optimizer's rate);
    return the loss before the step (detached: a number, or one per model of a stack) and the
    learning rate used."""
    lr = lr_at(step) if lr_at is not None else optimizer.param_groups[0]["lr"]
    if lr_at is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    loss = loss_fn(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    (loss.sum() if loss.ndim else loss).backward()
    optimizer.step()
    return loss.detach(), lr


def _record_eval(hist: History, eval_fn: Callable | None, model: nn.Module, step: int) -> None:
    """Run ``eval_fn(model)`` (if given) and append its metrics at ``step`` to ``hist``."""
    if eval_fn is None:
        return
    hist.eval_step.append(step)
    for k, v in eval_fn(model).items():   # a number, or one per model (a list or array)
        hist.evals.setdefault(k, []).append(_plain(v))


def _record_measures(hist: History, hooks, step: int, model: nn.Module, x, y) -> None:
    """Run the hooks of ``step`` (every step's, if ``hooks`` is one function) without side
    effects and append what they return to ``hist.measures``."""
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


def _progress_bar(progress: bool | str, steps: int, start: int):
    """Return a progress bar from ``start`` to ``steps`` (``progress`` may name it), or None when
    ``progress`` is false or ``BN_PROGRESS=0``."""
    if not progress or os.environ.get("BN_PROGRESS", "1") == "0":
        return None
    return _tqdm()(total=steps, initial=start, desc=progress if isinstance(progress, str) else "train",
                   leave=False, mininterval=1.0)


class Divergence:
    """Decides, from the logged mean losses, when a run has diverged (:func:`is_diverged`) and
    records it in its :class:`History`. A stacked run logs one loss per model: each model
    diverges on its own (``History.diverged_at`` becomes a list), ``stop_model(i)`` is called
    for it, and the run stops when every model has; a resumed stack's lost models are stopped
    again at once."""

    def __init__(self, hist: History, stop_model: Callable[[int], None] | None = None):
        self.hist, self.stop_model = hist, stop_model
        lost = hist.diverged_at if isinstance(hist.diverged_at, list) else []
        for i, at in enumerate(lost):
            if at is not None and stop_model is not None:
                stop_model(i)

    def stops(self, done: int, mean_loss: float | list) -> bool:
        """Record what diverged at step ``done``; return whether the run stops there."""
        hist = self.hist
        if not isinstance(mean_loss, list):
            if is_diverged(mean_loss, hist.start_loss):
                hist.diverged, hist.diverged_at, hist.steps_done = True, done, done
                return True
            return False
        if hist.diverged_at is None:
            hist.diverged_at = [None] * len(mean_loss)
        for i, gone in enumerate(is_diverged(mean_loss, hist.start_loss)):
            if gone and hist.diverged_at[i] is None:
                hist.diverged_at[i] = done
                if self.stop_model is not None:
                    self.stop_model(i)
        if all(at is not None for at in hist.diverged_at):
            hist.diverged, hist.steps_done = True, done
            return True
        return False


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
