"""Datasets as in-memory arrays and tensors: no DataLoader, no per-image Python.

``load(name)`` returns NumPy ``(x_train, y_train, x_test, y_test)``: uint8 images (MNIST N×28×28,
CIFAR-10 N×32×32×3 RGB) and int64 labels. It reads ``BN_DATA_DIR``:

* ``mnist.npz`` (arrays ``x_train, y_train, x_test, y_test``);
* ``cifar10.npz`` (the same four arrays, original pixels: what the torchvision fallback caches) or
  ``cifar10_jpeg.npz`` (the offline JPEG cache: ``train_jpeg``, ``train_offsets``, ... as described
  in the data README; decoded once per process).

With neither file it downloads through torchvision and caches ``<name>.npz`` in ``BN_DATA_DIR``;
offline, or with ``BN_OFFLINE=1``, it raises :class:`DataUnavailableError` naming ``BN_DATA_DIR``.

Every file is checked before use: against ``SHA256SUMS`` in the same folder when that lists it
(in the format ``sha256sum`` writes or the one ``shasum --tag`` writes; a line in neither is an
error naming the file and line), read as a regular file only, its arrays' declared sizes against
what the file holds, then its arrays (names, dtypes, shapes, label range, matching lengths, JPEG offsets); a JPEG that
does not decode to a 32×32 RGB image is named by split and index. Any failure raises one
:class:`DataError` that names the file; nothing trains on a file that fails.
"""

from __future__ import annotations

import functools
import io
import os
import re
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .files import UnreadableFile, check_npz_sizes, check_regular, read_capped, resolved, sha256_file

DATASETS = ("mnist", "cifar10")
# Per-channel statistics of the training sets, on the [0, 1] scale (the book's normalisation).
MEAN = {"mnist": (0.1307,), "cifar10": (0.4914, 0.4822, 0.4465)}
STD = {"mnist": (0.3081,), "cifar10": (0.2470, 0.2435, 0.2616)}
IMAGE_SHAPE = {"mnist": (28, 28), "cifar10": (32, 32, 3)}
N_CLASSES = 10
CHANCE = 1 / N_CLASSES   # the accuracy of guessing: MNIST and CIFAR-10 both have ten classes


class DataUnavailableError(RuntimeError):
    """The dataset is neither in BN_DATA_DIR nor downloadable."""


class DataError(ValueError):
    """A dataset file is truncated, corrupt, fails its checksum or holds the wrong arrays."""


def data_dir() -> Path:
    """Return the folder datasets are read from and cached in (``BN_DATA_DIR`` or a default); a
    ``BN_DATA_DIR`` that cannot be resolved (a symlink loop) is a :class:`DataError` naming it."""
    env = os.environ.get("BN_DATA_DIR")
    if env:
        try:
            return resolved(env, "BN_DATA_DIR")
        except ValueError as err:
            raise DataError(str(err)) from None
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
        # bool is an int to Python, but n_train=True is a mistake, not "one image"
        if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
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
    """Return the checked arrays of a dataset's file, downloading it first if it is missing."""
    folder = data_dir()
    plain = folder / f"{name}.npz"
    jpeg = folder / f"{name}_jpeg.npz"
    if not plain.exists() and not (name == "cifar10" and jpeg.exists()):
        _download(name, plain)
    path = plain if plain.exists() else jpeg
    return _read(name, str(path), path.stat().st_mtime_ns)


# A dataset's arrays unpack to at most ~200 MB (CIFAR-10's pixels); an .npz declaring more than
# this, or an array larger than its zip member holds, is refused before NumPy allocates it.
MAX_DATASET_BYTES = 4 << 30
MAX_SUMS_BYTES = 1 << 20
# the two formats of a SHA256SUMS line: `sha256sum` (HEX, two spaces or " *", name) and
# `shasum --tag` / BSD (SHA256 (name) = HEX)
SUMS_LINE = re.compile(r"(?P<hex>[0-9a-fA-F]{64}) [ *](?P<name>.+)")
TAG_LINE = re.compile(r"SHA256 \((?P<name>.+)\) = (?P<hex>[0-9a-fA-F]{64})")


@functools.lru_cache(maxsize=4)
def _read(name: str, path: str, _mtime_ns: int) -> dict:
    """Return every array of a dataset's npz file after checking its checksum and contents
    (cached per process: hashing and decoding are paid once)."""
    verify_checksum(Path(path))
    try:
        check_regular(path)
        check_npz_sizes(Path(path), MAX_DATASET_BYTES)  # before np.load allocates what it declares
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except UnreadableFile as err:
        raise DataError(f"{path}: {err}; replace the file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
        raise DataError(f"{path} is not a complete .npz file ({type(err).__name__}: {err}); "
                        "it may be truncated: delete it (it is downloaded again) or replace it") from None
    check_arrays(name, arrays, path)
    arrays["path"] = path   # for errors that name the file (a JPEG that does not decode)
    return arrays


def read_sums(sums: Path) -> dict[str, str]:
    """Return {file name: lower-case hex digest} from a SHA256SUMS file in either format
    (``./`` prefixes dropped; blank and ``#`` lines skipped); raise DataError naming the file
    and line for anything else, and for a name listed twice."""
    try:
        text = read_capped(sums, MAX_SUMS_BYTES).decode("utf-8")
    except UnreadableFile as err:
        raise DataError(f"{sums}: {err}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{sums} is not UTF-8 text ({err})") from None
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = SUMS_LINE.fullmatch(line) or TAG_LINE.fullmatch(line)
        if match is None:
            raise DataError(f"{sums} line {number} is not a SHA-256 line in the format of "
                            f"sha256sum ('HEX  NAME') or shasum --tag ('SHA256 (NAME) = HEX'): "
                            f"{line[:80]!r}")
        name = re.sub(r"^(\./)+", "", match["name"])
        if name in found:
            raise DataError(f"{sums} lists {name} twice (line {number} again)")
        found[name] = match["hex"].lower()
    return found


def verify_checksum(path: Path) -> None:
    """Raise DataError if ``SHA256SUMS`` beside ``path`` lists it with another digest, is not a
    readable list of digests, or ``path`` is not a regular file (no-op if there is no
    SHA256SUMS or it does not list ``path``)."""
    sums = path.parent / "SHA256SUMS"
    if not os.path.lexists(sums):
        return
    expected = read_sums(sums).get(path.name)
    if expected is None:
        return
    try:
        got = sha256_file(path)
    except UnreadableFile as err:
        raise DataError(f"{path}: {err}; replace the file") from None
    if got != expected:
        raise DataError(f"{path} does not match its SHA256SUMS digest (corrupt or modified; "
                        f"expected {expected[:12]}…, got {got[:12]}…): replace the file")


def check_arrays(name: str, arrays: dict, path: str) -> None:
    """Raise DataError (naming ``path``) unless ``arrays`` hold a dataset's splits as described in
    the module docstring: uint8 images of the right shape, integer labels 0..9, equal lengths."""
    def fail(message: str):
        raise DataError(f"{path}: {message}")

    def need(key: str, dtype_kind: str, ndim: int) -> np.ndarray:
        if key not in arrays:
            fail(f"array {key!r} is missing (it holds {', '.join(sorted(arrays)) or 'nothing'})")
        a = arrays[key]
        if a.dtype.kind != dtype_kind or (dtype_kind == "u" and a.dtype != np.uint8):
            want = "uint8" if dtype_kind == "u" else "integers"
            fail(f"{key} has dtype {a.dtype}, expected {want}")
        if a.ndim != ndim:
            fail(f"{key} has shape {a.shape}, expected {ndim} dimensions")
        return a

    jpeg = name == "cifar10" and "train_jpeg" in arrays
    for split in ("train", "test"):
        y = arrays.get(f"y_{split}")
        if y is not None and y.dtype.kind == "u":
            y = arrays[f"y_{split}"] = y.astype(np.int64)
        y = need(f"y_{split}", "i", 1)
        if len(y) and (y.min() < 0 or y.max() >= N_CLASSES):
            fail(f"y_{split} has labels {y.min()}..{y.max()}, expected 0..{N_CLASSES - 1}")
        if jpeg:
            blob = need(f"{split}_jpeg", "u", 1)
            offsets = need(f"{split}_offsets", "i", 1)
            if len(offsets) != len(y) + 1:
                fail(f"{split}_offsets has {len(offsets)} entries for {len(y)} labels "
                     f"(expected {len(y) + 1})")
            if offsets[0] != 0 or offsets[-1] != len(blob) or np.any(np.diff(offsets) <= 0):
                fail(f"{split}_offsets do not cut {split}_jpeg ({len(blob)} bytes) into "
                     "non-empty files from 0 to its end")
        else:
            x = need(f"x_{split}", "u", 1 + len(IMAGE_SHAPE[name]))
            if x.shape[1:] != IMAGE_SHAPE[name]:
                fail(f"x_{split} has images of shape {x.shape[1:]}, expected {IMAGE_SHAPE[name]}")
            if len(x) != len(y):
                fail(f"x_{split} has {len(x)} images but y_{split} has {len(y)} labels")


def _images(files: dict, split: str, idx: np.ndarray) -> np.ndarray:
    """Return the uint8 images ``idx`` of a split, decoding JPEGs if the file stores them."""
    if f"x_{split}" in files:
        return files[f"x_{split}"][idx]
    return _decode_jpegs(files[f"{split}_jpeg"], files[f"{split}_offsets"], idx,
                         f"{files['path']}: {split}")


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray, idx: np.ndarray,
                  where: str = "train") -> np.ndarray:
    """Return images ``idx`` of a JPEG blob as an (n, H, W, 3) uint8 array (decoded with Pillow,
    in threads: Pillow releases the GIL while it decodes); raise DataError naming ``where`` (the
    file and split) and the index of an image that does not decode to 32×32 RGB."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def decode(i: int) -> np.ndarray:
        raw = blob[offsets[i]: offsets[i + 1]].tobytes()
        try:
            img = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
        except Exception as err:  # noqa: BLE001 - Pillow raises several types for corrupt files
            raise DataError(f"{where} image {i} is not a readable JPEG "
                            f"({type(err).__name__}: {err})") from None
        if img.shape != IMAGE_SHAPE["cifar10"]:
            raise DataError(f"{where} image {i} has shape {img.shape}, expected "
                            f"{IMAGE_SHAPE['cifar10']}")
        return img

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
    from .runtime import atomic_write_bytes

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


def mnist(cfg, device=None, *, flatten: bool = True, seed: int = 0):
    """Return MNIST ``(x_train, y_train, x_test, y_test)`` as tensors on ``device``: ``cfg``'s
    stratified subsets of ``cfg.n_train`` and ``cfg.n_test`` images, standardised, flat
    784-vectors if ``flatten``."""
    return tensors("mnist", device, flatten=flatten, n_train=cfg.n_train, n_test=cfg.n_test,
                   seed=seed)


def tensors(name: str, device=None, *, normalise: bool = True, flatten: bool = False,
            n_train: int | None = None, n_test: int | None = None, seed: int = 0):
    """Return ``(x_train, y_train, x_test, y_test)`` as tensors on ``device`` (images float32)."""
    import torch

    x_tr, y_tr, x_te, y_te = load(name, n_train=n_train, n_test=n_test, seed=seed)
    conv = functools.partial(to_tensor, name=name, device=device, normalise=normalise, flatten=flatten)
    return conv(x_tr), torch.from_numpy(y_tr).to(device), conv(x_te), torch.from_numpy(y_te).to(device)


@functools.lru_cache(maxsize=4)
def device_tensors(name: str, device: str, *, uint8: bool = False, n_train: int | None = None,
                   n_test: int | None = None, seed: int = 0) -> tuple:
    """Return :func:`tensors` (or, with ``uint8``, the images as stored: uint8 (N, H, W, C) for
    CIFAR-10, and int64 labels) on ``device`` (a string), built once per process for each set of
    arguments and shared by every caller: the one cache of training-ready tensors, for experiments
    that train many runs on the same images (below it, ``_read`` keeps each verified file's arrays
    so that a file is hashed and decoded once). The tensors must not be changed in place."""
    import torch

    if uint8:
        arrays = load(name, n_train=n_train, n_test=n_test, seed=seed)
        return tuple(torch.from_numpy(a).to(device) for a in arrays)
    return tensors(name, torch.device(device), n_train=n_train, n_test=n_test, seed=seed)


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


class ModelBatches:
    """The minibatches of ``S`` models trained as one stack, model ``s``'s exactly those of
    ``batches(x, y, batch_size, seed=seeds[s])``: ``next`` returns ``x`` ``(S, B, ...)`` and ``y``
    ``(S, B)``, gathered with one ``index_select`` each; ``skip(n)`` skips every stream."""

    def __init__(self, x, y, batch_size: int, seeds):
        self.streams = [Batches(x, y, batch_size, seed=s) for s in seeds]
        self.x, self.y, self.batch_size = x, y, batch_size

    def __iter__(self) -> "ModelBatches":
        return self

    def __next__(self):
        import torch

        idx = torch.cat([s.next_indices() for s in self.streams])
        shape = (len(self.streams), self.batch_size)
        return (self.x.index_select(0, idx).view(*shape, *self.x.shape[1:]),
                self.y.index_select(0, idx).view(shape))

    def skip(self, n: int) -> None:
        """Advance every stream past ``n`` batches without touching the data."""
        for s in self.streams:
            s.skip(n)
