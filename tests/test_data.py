"""Dataset loading (files, JPEG cache, fallback, offline error), tensors and minibatches."""

import io

import numpy as np
import pytest
import torch
from conftest import needs_cifar10, needs_mnist
from PIL import Image

from bn_utils import data


def _write_mnist(folder, n_train=50, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": np.arange(n_train, dtype=np.int64) % 10,
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": np.arange(n_test, dtype=np.int64) % 10}
    np.savez(folder / "mnist.npz", **arrays)
    return arrays


def _write_cifar_jpeg(folder, n_train=30, n_test=10):
    """Write a tiny cifar10_jpeg.npz in the shipped format; return the decoded images (PIL)."""
    rng = np.random.default_rng(1)
    out, decoded = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        blobs = []
        for _ in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
            blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
        out[f"{split}_jpeg"] = np.concatenate(blobs)
        out[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
        out[f"y_{split}"] = np.sort(np.arange(n, dtype=np.int64) % 10)  # sorted by class, like the real file
        decoded[split] = np.stack([np.asarray(Image.open(io.BytesIO(b.tobytes())).convert("RGB")) for b in blobs])
    np.savez(folder / "cifar10_jpeg.npz", **out)
    return decoded, out


def test_load_reads_mnist_from_bn_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    arrays = _write_mnist(tmp_path)
    x_tr, y_tr, x_te, y_te = data.load("mnist")
    assert (x_tr.dtype, y_tr.dtype, x_tr.shape, x_te.shape) == (np.uint8, np.int64, (50, 28, 28), (20, 28, 28))
    np.testing.assert_array_equal(x_tr, arrays["x_train"])
    np.testing.assert_array_equal(y_te, arrays["y_test"])


def test_load_decodes_the_jpeg_cache_like_pillow(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    decoded, raw = _write_cifar_jpeg(tmp_path)
    x_tr, y_tr, x_te, y_te = data.load("cifar10")
    assert x_tr.shape == (30, 32, 32, 3) and x_tr.dtype == np.uint8 and y_tr.dtype == np.int64
    np.testing.assert_array_equal(x_tr, decoded["train"])
    np.testing.assert_array_equal(x_te, decoded["test"])
    np.testing.assert_array_equal(y_tr, raw["y_train"])


def test_subsets_are_stratified_seeded_and_decode_only_what_they_pick(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    decoded, raw = _write_cifar_jpeg(tmp_path, n_train=30)
    x_a, y_a, x_te, _ = data.load("cifar10", n_train=10, n_test=5, seed=3)
    x_b, y_b, _, _ = data.load("cifar10", n_train=10, n_test=5, seed=3)
    assert np.bincount(y_a, minlength=10).tolist() == [1] * 10  # one per class from a class-sorted file
    np.testing.assert_array_equal(x_a, x_b)
    assert len(x_te) == 5
    idx = [np.flatnonzero((decoded["train"] == img).all(axis=(1, 2, 3)))[0] for img in x_a]
    assert idx == sorted(idx) and len(set(idx)) == 10
    _, y_c, _, _ = data.load("cifar10", n_train=10, seed=4)
    assert np.bincount(y_c, minlength=10).tolist() == [1] * 10


@pytest.mark.parametrize("where", ["loop", "loop/sub"])
def test_a_symlink_loop_in_bn_data_dir_is_a_data_error_naming_it(where, tmp_path, monkeypatch):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path / where))
    with pytest.raises(data.DataError, match=f"BN_DATA_DIR {tmp_path / where}: a symlink loop"):
        data.data_dir()


def test_missing_file_offline_raises_an_error_naming_bn_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataUnavailableError, match=f"BN_DATA_DIR={tmp_path}"):
        data.load("mnist")


def test_failed_download_raises_an_error_naming_bn_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BN_OFFLINE")

    def offline(name):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(data, "_fetch_torchvision", offline)
    with pytest.raises(data.DataUnavailableError, match="BN_DATA_DIR.*name resolution"):
        data.load("cifar10")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_download_is_cached_in_bn_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BN_OFFLINE")
    fetched = {"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": np.arange(4),
               "x_test": np.ones((2, 28, 28), np.uint8), "y_test": np.arange(2)}
    monkeypatch.setattr(data, "_fetch_torchvision", lambda name: fetched)
    assert data.load("mnist")[2].sum() == 2 * 28 * 28
    assert (tmp_path / "mnist.npz").exists()
    monkeypatch.setattr(data, "_fetch_torchvision", lambda name: pytest.fail("downloaded twice"))
    assert data.load("mnist")[0].shape == (4, 28, 28)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "imagenet"}, "unknown dataset 'imagenet'; choose one of mnist, cifar10"),
    ({"name": "mnist", "n_train": 0}, "n_train=0 must be a positive integer"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load(**kwargs)


def test_to_tensor_scales_standardises_and_lays_out_nchw():
    x = np.full((3, 32, 32, 3), 255, np.uint8)
    t = data.to_tensor(x, "cifar10")
    assert t.shape == (3, 3, 32, 32) and t.dtype == torch.float32
    expected = (1 - np.array(data.MEAN["cifar10"])) / np.array(data.STD["cifar10"])
    np.testing.assert_allclose(t[0, :, 0, 0].numpy(), expected, rtol=1e-6)
    m = data.to_tensor(np.zeros((2, 28, 28), np.uint8), "mnist", normalise=False, flatten=True)
    assert m.shape == (2, 784) and m.abs().sum() == 0


def test_batches_cover_every_example_once_per_epoch_and_are_seeded():
    x, y = torch.arange(12.0).view(12, 1), torch.arange(12)
    it = data.batches(x, y, 4, seed=0)
    epoch = torch.cat([next(it)[1] for _ in range(3)])
    assert sorted(epoch.tolist()) == list(range(12))
    xb, yb = next(data.batches(x, y, 4, seed=0))
    assert torch.equal(xb[:, 0].long(), yb)
    again = data.batches(x, y, 4, seed=0)
    assert torch.equal(torch.cat([next(again)[1] for _ in range(3)]), epoch)
    other = data.batches(x, y, 4, seed=1)
    assert not torch.equal(torch.cat([next(other)[1] for _ in range(3)]), epoch)


def test_skip_lands_on_the_same_batch_as_iterating():
    x, y = torch.arange(10.0).view(10, 1), torch.arange(10)
    walked = data.batches(x, y, 3, seed=5)
    for _ in range(7):
        next(walked)
    jumped = data.batches(x, y, 3, seed=5)
    jumped.skip(7)
    assert torch.equal(next(walked)[1], next(jumped)[1])


@pytest.mark.parametrize("batch_size, message", [(0, "batch_size=0 must be a positive integer"),
                                                 (11, "batch_size=11 is larger than the 10 examples")])
def test_bad_batch_sizes_raise(batch_size, message):
    with pytest.raises(ValueError, match=message):
        data.batches(torch.zeros(10, 1), torch.zeros(10), batch_size)


@needs_mnist
def test_shipped_mnist_is_the_original_in_its_original_order():
    x_tr, y_tr, x_te, y_te = data.load("mnist")
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert y_tr[:5].tolist() == [5, 0, 4, 1, 9] and y_te[:5].tolist() == [7, 2, 1, 0, 4]
    assert abs(x_tr.mean() / 255 - 0.1307) < 1e-3


@needs_cifar10
def test_shipped_cifar10_subset_has_the_documented_statistics():
    x_tr, y_tr, _, _ = data.load("cifar10", n_train=5000, n_test=10)
    assert x_tr.shape == (5000, 32, 32, 3) and np.bincount(y_tr).tolist() == [500] * 10
    np.testing.assert_allclose(x_tr.reshape(-1, 3).mean(0), (125.3, 122.9, 113.9), atol=1.5)


def test_next_indices_walks_the_same_sequence_as_next():
    x, y = torch.arange(40.0).view(20, 2), torch.arange(20)
    by_batch = data.batches(x, y, 6, seed=3)
    by_index = data.batches(x, y, 6, seed=3)
    for _ in range(10):   # across several epochs (3 batches each)
        xb, yb = next(by_batch)
        idx = by_index.next_indices()
        assert torch.equal(x[idx], xb) and torch.equal(y[idx], yb)


# --- files that are wrong: one error that names the file, nothing trains on them ------------------


def _rewrite(folder, name, **changes):
    """Rewrite ``name`` in ``folder`` with some arrays replaced (as a careless conversion would)."""
    with np.load(folder / name) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    np.savez(folder / name, **arrays)


@pytest.mark.parametrize("changes, message", [
    (lambda a: {"x_train": a["x_train"].astype(np.float32) / 255},
     r"x_train has dtype float32, expected uint8"),
    (lambda a: {"y_train": a["y_train"][:-5]}, r"x_train has 50 images but y_train has 45 labels"),
    (lambda a: {"y_test": a["y_test"] + 1}, r"y_test has labels 1..10, expected 0..9"),
    (lambda a: {"y_train": a["y_train"].astype(np.float64)}, r"y_train has dtype float64"),
    (lambda a: {"x_test": a["x_test"][:, :27]}, r"x_test has images of shape \(27, 28\)"),
])
def test_a_mnist_file_with_wrong_arrays_is_refused(changes, message, tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    arrays = _write_mnist(tmp_path)
    _rewrite(tmp_path, "mnist.npz", **changes(arrays))
    with pytest.raises(data.DataError, match=rf"{tmp_path / 'mnist.npz'}: {message}"):
        data.load("mnist")


def test_a_truncated_npz_is_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    _write_mnist(tmp_path)
    raw = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match=rf"{tmp_path / 'mnist.npz'} is not a complete .npz"):
        data.load("mnist")


def _sha256sums(folder, *names):
    import hashlib

    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_a_flipped_jpeg_byte_fails_the_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    _, raw = _write_cifar_jpeg(tmp_path)
    _sha256sums(tmp_path, "cifar10_jpeg.npz")
    assert data.load("cifar10")[0].shape == (30, 32, 32, 3)   # intact: the digest matches
    blob = raw["train_jpeg"].copy()
    start, end = raw["train_offsets"][7], raw["train_offsets"][8]
    blob[(start + end) // 2] ^= 0x10  # two bytes in the middle of image 7's compressed data
    blob[(start + end) // 2 + 1] ^= 0x01
    _rewrite(tmp_path, "cifar10_jpeg.npz", train_jpeg=blob)
    with pytest.raises(data.DataError, match=rf"{tmp_path / 'cifar10_jpeg.npz'} does not match "
                                             "its SHA256SUMS digest"):
        data.load("cifar10")


def _no_start_marker(raw):   # zeroes test image 3's start-of-image marker
    blob = raw["test_jpeg"].copy()
    blob[raw["test_offsets"][3]: raw["test_offsets"][3] + 4] = 0
    return {"test_jpeg": blob}


@pytest.mark.parametrize("changes, message", [
    (_no_start_marker, "/cifar10_jpeg.npz: test image 3 is not a readable JPEG"),
    (lambda raw: {"train_offsets": raw["train_offsets"][:-1]},
     "train_offsets has 30 entries for 30 labels"),
])
def test_a_jpeg_cache_that_does_not_decode_names_the_split_and_index(changes, message, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("BN_DATA_DIR", str(tmp_path))
    _, raw = _write_cifar_jpeg(tmp_path)
    _rewrite(tmp_path, "cifar10_jpeg.npz", **changes(raw))
    with pytest.raises(data.DataError, match=message):
        data.load("cifar10")


def test_the_shipped_files_match_their_sha256sums():
    import os
    from pathlib import Path

    folder = Path(os.environ.get("BN_DATA_DIR", "/nonexistent"))
    if not (folder / "SHA256SUMS").exists():
        pytest.skip(f"no SHA256SUMS in BN_DATA_DIR ({folder})")
    present = [name for name in ("mnist.npz", "cifar10_jpeg.npz") if (folder / name).exists()]
    if not present:
        pytest.skip(f"neither mnist.npz nor cifar10_jpeg.npz in BN_DATA_DIR ({folder}): nothing to check")
    listed = data.read_sums(folder / "SHA256SUMS")
    assert set(present) <= set(listed), f"SHA256SUMS does not list {sorted(set(present) - set(listed))}"
    for name in present:
        data.verify_checksum(folder / name)   # raises DataError on a digest that differs


def test_model_batches_are_each_seeds_own_batches_and_skip_alike():
    x, y = torch.randn(50, 3), torch.arange(50)
    together = data.ModelBatches(x, y, 7, seeds=[4, 0, 4])
    alone = [data.batches(x, y, 7, seed=s) for s in (4, 0, 4)]
    together.skip(3)
    for b in alone:
        b.skip(3)
    for _ in range(12):   # past the end of an epoch (7 batches of 7 from 50)
        xs, ys = next(together)
        assert xs.shape == (3, 7, 3) and ys.shape == (3, 7)
        for s, b in enumerate(alone):
            xb, yb = next(b)
            assert torch.equal(xs[s], xb) and torch.equal(ys[s], yb)
