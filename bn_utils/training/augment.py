"""Batched image augmentation on tensors (CPU or GPU): no per-image Python, no DataLoader.

Images stay uint8 ``(N, H, W, C)`` on the device (a quarter of float32's memory); each minibatch is
cropped and flipped in one gather, turned into floats, colour-jittered and normalised, and comes
out as an ``(N, C, H, W)`` float tensor in ``channels_last`` memory (what the conv kernels prefer).
Randomness comes from torch's global generator of the batch's device, which ``train.fit``
checkpoints, so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import data


def crop_flip(x: torch.Tensor, *, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Return a random crop (zero padding ``pad``, same size) of every image of a uint8
    ``(N, H, W, C)`` batch, each mirrored left-right with probability 1/2 if ``flip``.
    With ``pad=0`` and ``flip=False`` the batch itself is returned."""
    if x.ndim != 4:
        raise ValueError(f"expected an (N, H, W, C) batch, got shape {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad={pad} must be >= 0")
    if pad == 0 and not flip:
        return x
    n, h, w, _ = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad)) if pad else x
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=dev)
    rows = dy + torch.arange(h, device=dev)
    cols = torch.arange(w, device=dev).expand(n, w)
    if flip:
        mirrored = torch.rand(n, 1, device=dev) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    cols = dx + cols
    # one gather does crop and flip: (N, 1, 1), (N, H, 1), (N, 1, W) → (N, H, W, C)
    return padded[torch.arange(n, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]


def colour_jitter(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Return float images ``x`` in [0, 1] (channels last: ``(N, H, W, 3)``) with random brightness,
    contrast and saturation, each scaled by a factor drawn uniformly from [1 - s, 1 + s] per image
    (s = ``strength``), clamped to [0, 1]. ``strength=0`` returns ``x`` itself."""
    if strength < 0:
        raise ValueError(f"strength={strength} must be >= 0")
    if strength == 0:
        return x
    n = x.shape[0]

    def factor() -> torch.Tensor:
        return (1 + strength * (2 * torch.rand(n, 1, 1, 1, device=x.device) - 1)).to(x.dtype)

    x = x * factor()                                                   # brightness
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * factor()                                   # contrast
    grey = (x * x.new_tensor([0.299, 0.587, 0.114])).sum(3, keepdim=True)
    x = grey + (x - grey) * factor()                                   # saturation
    return x.clamp_(0, 1)


def normalise(x: torch.Tensor, name: str = "cifar10", *, channels_last: bool = True) -> torch.Tensor:
    """Return uint8 (or [0, 1] float) ``(N, H, W, C)`` images as float32 ``(N, C, H, W)``,
    standardised with the training set's per-channel mean and std, in channels_last memory
    (else contiguous NCHW)."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    mean = x.new_tensor(data.MEAN[name])
    std = x.new_tensor(data.STD[name])
    # (N, H, W, C) contiguous permuted to NCHW *is* channels_last memory: no copy needed
    out = ((x - mean) / std).permute(0, 3, 1, 2)
    return out if channels_last else out.contiguous()


@dataclass(frozen=True)
class Augment:
    """A batch transform: crop (``pad``) and ``flip`` on uint8, then colour ``jitter``, then
    :func:`normalise`. ``Augment(pad=0, flip=False, jitter=0)`` only normalises."""

    pad: int = 4
    flip: bool = True
    jitter: float = 0.0
    name: str = "cifar10"
    channels_last: bool = True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return the augmented, normalised float batch (N, C, H, W) of uint8 images (N, H, W, C)."""
        x = crop_flip(x, pad=self.pad, flip=self.flip)
        x = x.float().div_(255)
        x = colour_jitter(x, self.jitter)
        return normalise(x, self.name, channels_last=self.channels_last)


class AugmentedBatches:
    """Wrap a :class:`bn_utils.data.Batches` of uint8 images: yield ``(augment(x), y)``.
    ``skip(n)`` passes through (a resumed run finds its place without augmenting anything)."""

    def __init__(self, batches: data.Batches, augment: Augment):
        self.batches, self.augment = batches, augment
        self.per_epoch = batches.per_epoch

    def __iter__(self) -> "AugmentedBatches":
        return self

    def __next__(self):
        x, y = next(self.batches)
        return self.augment(x), y

    def skip(self, n: int) -> None:
        """Advance past ``n`` batches without touching the data."""
        self.batches.skip(n)
