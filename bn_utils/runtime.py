"""Runtime helpers every other module may use: the device, seeding, CPU threads, atomic writes,
a median timer and an eval-mode switch. A leaf: it imports nothing else of the package, so any
module can import it without creating a cycle."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn


def default_device() -> torch.device:
    """Return ``BN_DEVICE`` if set (checked by :func:`check_device`), else CUDA when available,
    else the CPU."""
    name = os.environ.get("BN_DEVICE")
    if name:
        return check_device(name, "BN_DEVICE")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(name: str, what: str = "BN_DEVICE") -> torch.device:
    """Return the torch device ``name`` if the book can run on it here: ``cpu``, or ``cuda`` /
    ``cuda:N`` with that CUDA device present; else raise ValueError naming ``what`` (the option or
    variable it came from). The runner calls it before a kernel starts."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{what} {name!r} is not a device; give cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):  # mps, meta, xpu...: the code is tested on neither
        raise ValueError(f"{what} {name!r}: this book runs on cpu or cuda[:N], not {dev.type}")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{what} {name!r}: CUDA is not available here")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"{what} {name!r}: this machine has {count} CUDA device"
                             f"{'s' * (count != 1)} (cuda:0 to cuda:{count - 1})")
    return dev


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


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Switch ``model`` to eval mode for the block and restore its previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1,
                   device: torch.device | None = None) -> float:
    """Return the median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls
    (:func:`alternating_medians` with one function)."""
    return alternating_medians({"fn": fn}, repeats, warmup, device)["fn"]


def alternating_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                        device: torch.device | None = None) -> dict[str, float]:
    """Return each of ``fns``' median wall time over ``repeats`` rounds that call every function
    once in turn, after ``warmup`` such rounds: alternating, a machine busy with other work slows
    them alike. On a GPU each call is synchronised, so the work is timed, not its launch."""
    def timed(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    for _ in range(warmup):
        for fn in fns.values():
            timed(fn)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: float(np.median(t)) for name, t in times.items()}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would make stored results private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
