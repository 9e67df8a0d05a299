"""Reading untrusted files: regular files only, size-capped, npz sizes checked before allocation."""

import io
import os

import numpy as np
import pytest

from bn_utils import files


def test_a_regular_file_is_read_and_hashed(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert files.read_capped(path, 3) == b"abc"
    assert files.sha256_file(path) == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"   # FIPS 180-2's "abc" vector


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.symlink_to("/dev/zero"), "a device, pipe or socket"),
    (lambda p: os.mkfifo(p), "a device, pipe or socket"),
    (lambda p: p.symlink_to(p), "cannot be opened"),
    (lambda p: None, "cannot be opened"),
])
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path, make, expected):
    path = tmp_path / "f"
    make(path)
    for read in (lambda: files.read_capped(path, 10), lambda: files.sha256_file(path)):
        with pytest.raises(files.UnreadableFile, match=expected):
            read()


def test_a_file_over_the_cap_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "f"
    path.touch()
    os.truncate(path, 1 << 40)  # sparse: a terabyte that takes no disk
    with pytest.raises(files.UnreadableFile, match="is 1,099,511,627,776 bytes, more than the 1,000 allowed"):
        files.read_capped(path, 1000)


def test_a_real_npz_passes_the_size_check_and_one_too_large_does_not():
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros((100, 28, 28), np.uint8), y=np.arange(100))
    files.check_npz_sizes(buf.getvalue(), 10**6)
    with pytest.raises(files.UnreadableFile, match="unpacks to"):
        files.check_npz_sizes(buf.getvalue(), 1000)
