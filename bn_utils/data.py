"""Datasets as in-memory arrays and tensors: no DataLoader, no per-image Python.

``load(name)`` returns NumPy ``(x_train, y_train, x_test, y_test)``: uint8 images (MNIST N×28×28,
CIFAR-10 N×32×32×3 RGB) and int64 labels. It reads ``BN_DATA_DIR``:

* ``mnist.npz`` (arrays ``x_train, y_train, x_test, y_test``);
* ``cifar10.npz`` (the same four arrays, original pixels: what the torchvision fallback caches) or
  ``cifar10_jpeg.npz`` (the offline JPEG cache: ``train_jpeg``, ``train_offsets``, ... as described
  in the data README; decoded once per process).

With neither file it downloads through torchvision and caches ``<name>.npz`` in ``BN_DATA_DIR``;
offline, or with ``BN_OFFLINE=1``, it raises :class:`DataUnavailableError` naming ``BN_DATA_DIR``.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "cifar10")
# Per-channel statistics of the training sets, on the [0, 1] scale (the book's normalisation).
MEAN = {"mnist": (0.1307,), "cifar10": (0.4914, 0.4822, 0.4465)}
STD = {"mnist": (0.3081,), "cifar10": (0.2470, 0.2435, 0.2616)}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


class DataUnavailableError(RuntimeError):
    """The dataset is neither in BN_DATA_DIR nor downloadable."""


def data_dir() -> Path:
    """Return the folder datasets are read from and cached in (``BN_DATA_DIR`` or a default)."""
    env = os.environ.get("BN_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "bn_book" / "data"


def load(name: str, *, n_train: int | None = None, n_test: int | None = None,
         seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` as NumPy arrays (uint8 images, int64 labels).

    ``n_train``/``n_test`` pick a class-stratified random subset (seeded), which the smoke and
    quick profiles use; only the chosen CIFAR-10 JPEGs are decoded.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    for n, label in ((n_train, "n_train"), (n_test, "n_test")):
        if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
            raise ValueError(f"{label}={n!r} must be a positive integer or None")
    files = _files(name)
    y_train, y_test = files["y_train"], files["y_test"]
    train_idx = _subset(y_train, n_train, seed)
    test_idx = _subset(y_test, n_test, seed + 1)
    x_train = _images(files, "train", train_idx)
    x_test = _images(files, "test", test_idx)
    return x_train, y_train[train_idx].astype(np.int64), x_test, y_test[test_idx].astype(np.int64)


def _subset(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Return sorted indices of a class-stratified random subset of size n (all if n is None)."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Rank every example within its class (in random order), then take the lowest ranks first:
    # classes stay balanced even in tiny subsets of the class-sorted CIFAR-10 file.
    rank = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    chosen = order[np.argsort(rank[order], kind="stable")][:n]
    return np.sort(chosen)


def _files(name: str) -> dict:
    """Return the arrays of a dataset's file, downloading it first if it is missing."""
    folder = data_dir()
    plain = folder / f"{name}.npz"
    jpeg = folder / f"{name}_jpeg.npz"
    if not plain.exists() and not (name == "cifar10" and jpeg.exists()):
        _download(name, plain)
    path = plain if plain.exists() else jpeg
    return _read(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read(path: str, _mtime_ns: int) -> dict:
    """Return every array of an npz file (cached per process: decoding is paid once)."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _images(files: dict, split: str, idx: np.ndarray) -> np.ndarray:
    """Return the uint8 images ``idx`` of a split, decoding JPEGs if the file stores them."""
    if f"x_{split}" in files:
        return files[f"x_{split}"][idx]
    return _decode_jpegs(files[f"{split}_jpeg"], files[f"{split}_offsets"], idx)


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Return images ``idx`` of a JPEG blob as an (n, H, W, 3) uint8 array (decoded with Pillow,
    in threads: Pillow releases the GIL while it decodes)."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def decode(i: int) -> np.ndarray:
        raw = blob[offsets[i]: offsets[i + 1]].tobytes()
        return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))

    if len(idx) == 0:
        return np.zeros((0, 32, 32, 3), np.uint8)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return np.stack(list(pool.map(decode, idx, chunksize=256)))


def _download(name: str, target: Path) -> None:
    """Fetch a dataset through torchvision and cache it as ``target`` (raise if that fails)."""
    where = f"BN_DATA_DIR={data_dir()}" if os.environ.get("BN_DATA_DIR") else \
        f"BN_DATA_DIR (unset; default {data_dir()})"
    hint = (f"{name}: no {target.name}" + (" or cifar10_jpeg.npz" if name == "cifar10" else "")
            + f" in {where}. Point BN_DATA_DIR at a folder that holds it")
    if os.environ.get("BN_OFFLINE") == "1":
        raise DataUnavailableError(hint + " (downloads are off: BN_OFFLINE=1).")
    try:
        arrays = _fetch_torchvision(name)
    except Exception as err:  # noqa: BLE001 - any failure means: offline or broken mirror
        raise DataUnavailableError(f"{hint}, or connect to the internet so torchvision can "
                                   f"download it (download failed: {err}).") from err
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    from .results import atomic_write_bytes

    atomic_write_bytes(target, buf.getvalue())


def _fetch_torchvision(name: str) -> dict:
    """Return the four arrays of a dataset downloaded by torchvision (needs internet)."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = {}
        for split, train in (("train", True), ("test", False)):
            ds = cls(tmp, train=train, download=True)
            x = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
            out[f"x_{split}"] = x.astype(np.uint8)
            out[f"y_{split}"] = np.asarray(ds.targets, dtype=np.int64)
        return out


# ---------------------------------------------------------------------------------------------
# Arrays to tensors, and minibatches without a DataLoader


def to_tensor(x: np.ndarray, name: str, device=None, *, normalise: bool = True, flatten: bool = False):
    """Return float32 images as a tensor on ``device``: NCHW, scaled to [0, 1] and, if
    ``normalise``, standardised with the training set's per-channel mean and std."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    t = t.float().div_(255)
    if normalise:
        mean = torch.tensor(MEAN[name], device=t.device).view(1, -1, 1, 1)
        std = torch.tensor(STD[name], device=t.device).view(1, -1, 1, 1)
        t = (t - mean) / std
    if flatten:
        t = t.flatten(1)
    return t.contiguous()


def tensors(name: str, device=None, *, normalise: bool = True, flatten: bool = False,
            n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """Return ``(x_train, y_train, x_test, y_test)`` as tensors on ``device`` (images float32)."""
    import torch

    x_tr, y_tr, x_te, y_te = load(name, n_train=n_train, n_test=n_test, seed=seed)
    conv = functools.partial(to_tensor, name=name, device=device, normalise=normalise, flatten=flatten)
    return conv(x_tr), torch.from_numpy(y_tr).to(device), conv(x_te), torch.from_numpy(y_te).to(device)


class Batches:
    """An endless iterator of shuffled minibatches ``(x[idx], y[idx])`` of in-memory tensors.

    Every epoch draws a new permutation from a seeded generator, so the sequence of batches is a
    function of the seed alone; ``skip(n)`` jumps over n batches without indexing any data (how a
    resumed run finds its place).
    """

    def __init__(self, x, y, batch_size: int, *, seed: int = 0, drop_last: bool = True):
        import torch

        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
        if batch_size > len(x):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(x)} examples")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        n = len(x)
        self.per_epoch = n // batch_size if drop_last else -(-n // batch_size)
        self.order, self.pos = None, self.per_epoch

    def __iter__(self) -> "Batches":
        return self

    def _next_index(self):
        import torch

        if self.pos == self.per_epoch:
            self.order = torch.randperm(len(self.x), generator=self.gen).to(self.x.device)
            self.pos = 0
        start = self.pos * self.batch_size
        self.pos += 1
        return start

    def next_indices(self):
        """Return the indices (into ``x`` and ``y``) of the next minibatch, advancing the iterator:
        what a caller that gathers several streams' batches at once (stacked models) needs."""
        start = self._next_index()
        return self.order[start: start + self.batch_size]

    def __next__(self):
        idx = self.next_indices()
        return self.x[idx], self.y[idx]

    def skip(self, n: int) -> None:
        """Advance past ``n`` batches without touching the data."""
        for _ in range(n):
            self._next_index()


def batches(x, y, batch_size: int, *, seed: int = 0, drop_last: bool = True) -> Batches:
    """Return an endless iterator of ``(x_batch, y_batch)``, reshuffled each epoch (seeded)."""
    return Batches(x, y, batch_size, seed=seed, drop_last=drop_last)
