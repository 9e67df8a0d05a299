"""Batched augmentation: shapes, dtypes, identity when disabled, crops are shifted windows."""

import pytest
import torch

from bn_utils.training import augment
from bn_utils import data


def images(n=16, h=8, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), generator=g, dtype=torch.uint8)


def test_crop_flip_is_identity_when_disabled():
    x = images()
    assert augment.crop_flip(x, pad=0, flip=False) is x


def test_every_crop_is_a_window_of_the_padded_image_possibly_mirrored():
    torch.manual_seed(1)
    x = images(n=32)
    pad = 3
    out = augment.crop_flip(x, pad=pad, flip=True)
    padded = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
    h, w = x.shape[1:3]
    flips = shifts = 0
    for i in range(len(x)):
        windows = [(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(1) if f else c)(
                       padded[i, dy: dy + h, dx: dx + w]))]
        assert windows, f"image {i} is not a (mirrored) window of its padded original"
        flips += windows[0][2]
        shifts += (windows[0][0], windows[0][1]) != (pad, pad)
    assert 4 <= flips <= 28, f"{flips}/32 images flipped; expected about half"
    assert shifts >= 16, f"only {shifts}/32 images were shifted"


def test_flip_only_mirrors_columns():
    torch.manual_seed(0)
    x = images(n=64)
    out = augment.crop_flip(x, pad=0, flip=True)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(2)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 10 < int(mirrored.sum()) < 54


def test_colour_jitter_keeps_range_and_is_identity_at_zero():
    torch.manual_seed(0)
    x = images().float() / 255
    assert augment.colour_jitter(x, 0.0) is x
    y = augment.colour_jitter(x.clone(), 0.4)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert not torch.allclose(y, x)


def test_normalise_gives_channels_last_standardised_nchw():
    x = images(n=4, h=32, w=32)
    out = augment.normalise(x)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    mean = torch.tensor(data.MEAN["cifar10"]).view(1, 3, 1, 1)
    std = torch.tensor(data.STD["cifar10"]).view(1, 3, 1, 1)
    expected = (x.permute(0, 3, 1, 2).float() / 255 - mean) / std
    torch.testing.assert_close(out, expected)


def test_disabled_augment_only_normalises():
    x = images(n=4, h=32, w=32)
    torch.testing.assert_close(augment.Augment(pad=0, flip=False, jitter=0.0)(x),
                               augment.normalise(x))


def test_augmented_batches_skip_keeps_the_order_of_an_uninterrupted_iterator():
    x, y = images(n=40), torch.arange(40)
    make = lambda: augment.AugmentedBatches(data.batches(x, y, 8, seed=3),  # noqa: E731
                                            augment.Augment(pad=0, flip=False))
    full = make()
    labels = [next(full)[1] for _ in range(7)]
    resumed = make()
    resumed.skip(4)
    assert all(torch.equal(next(resumed)[1], labels[i]) for i in range(4, 7))


@pytest.mark.parametrize("bad", [-1])
def test_negative_pad_is_rejected(bad):
    with pytest.raises(ValueError, match="pad"):
        augment.crop_flip(images(), pad=bad)


def test_nchw_option_gives_the_same_values_in_contiguous_memory():
    torch.manual_seed(0)
    x = images(n=4, h=32, w=32)
    out = augment.Augment(pad=0, flip=False, channels_last=False)(x)
    assert out.is_contiguous()
    torch.testing.assert_close(out, augment.normalise(x))
