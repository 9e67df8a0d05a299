"""Reading files that may be anything: a record or dataset copied from elsewhere, a folder, a
device, a link loop, a zip that declares more than it holds.

Every read here opens the file once, checks on the open descriptor that it is a regular file
(``/dev/zero`` would otherwise hash forever, a FIFO would block) and reads at most a given number
of bytes; an ``.npz`` has each array's declared size checked against what its zip member holds
before NumPy allocates it. Each failure is an :class:`UnreadableFile` whose message says what the
file is instead (callers add the file's name and what to do). A leaf: it imports nothing else of
the package and not torch.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npy


class UnreadableFile(ValueError):
    """A file is not a regular file, is larger than allowed, or is not what it claims to be."""


def _open_regular(path: Path) -> tuple[int, int]:
    """Return (descriptor, size) of ``path`` opened for reading; raise UnreadableFile unless it
    is a regular file."""
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        raise UnreadableFile("is a folder, not a file") from None
    except OSError as err:
        raise UnreadableFile(f"cannot be opened ({err.strerror or err})") from None
    info = os.fstat(fd)  # of what was opened, not of a path that may have changed since
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
        raise UnreadableFile(f"is {kind}, not a regular file")
    return fd, info.st_size


def check_regular(path: Path) -> None:
    """Raise UnreadableFile unless ``path`` is a regular file that can be opened."""
    os.close(_open_regular(Path(path))[0])


def read_capped(path: Path, max_bytes: int) -> bytes:
    """Return the bytes of the regular file ``path``; raise UnreadableFile if it is anything else
    or holds more than ``max_bytes``."""
    fd, size = _open_regular(Path(path))
    with os.fdopen(fd, "rb") as f:
        if size > max_bytes:
            raise UnreadableFile(f"is {size:,} bytes, more than the {max_bytes:,} allowed")
        data = f.read(max_bytes + 1)  # the size may have grown since fstat
    if len(data) > max_bytes:
        raise UnreadableFile(f"holds more than the {max_bytes:,} bytes allowed")
    return data


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of the regular file ``path`` (read in chunks); raise
    UnreadableFile if it is not a regular file."""
    fd, _ = _open_regular(Path(path))
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _declared_bytes(member: zipfile.ZipInfo, z: zipfile.ZipFile) -> int:
    """Return the bytes the .npy header of ``member`` says its array holds."""
    with z.open(member) as f:
        version = npy.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(f)
        else:
            raise UnreadableFile(f"{member.filename} is .npy version {version}, not 1.0 or 2.0")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise UnreadableFile(f"{member.filename} declares the shape {shape}")
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def check_npz_sizes(source: Path | bytes, max_bytes: int) -> None:
    """Raise UnreadableFile unless every array of the .npz ``source`` (a path or its bytes) holds
    no more bytes than its zip member and all of them together at most ``max_bytes``: an array
    header declaring 10**9 images would otherwise be allocated before its data is found missing."""
    with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as z:
        members = [m for m in z.infolist() if m.filename.endswith(".npy")]
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise UnreadableFile(f"unpacks to {total:,} bytes, more than the {max_bytes:,} allowed")
        for m in members:
            declared = _declared_bytes(m, z)
            if declared > m.file_size:
                raise UnreadableFile(f"{m.filename} declares {declared:,} bytes of data but "
                                     f"holds {m.file_size:,}")


def resolved(folder: Path | str, what: str) -> Path:
    """Return ``folder`` resolved; raise ValueError naming ``what`` (the option or variable) for a
    symlink loop or a path that cannot be resolved."""
    try:
        return Path(folder).expanduser().resolve()
    except RuntimeError:  # Python < 3.13 reports a loop so
        raise ValueError(f"{what} {folder}: a symlink loop") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f"{what} {folder}: a symlink loop") from None
        raise ValueError(f"{what} {folder}: cannot be used ({err.strerror or err})") from None
