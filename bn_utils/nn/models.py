"""Model builders. BN goes where Ioffe & Szegedy put it: on ``x = Wu``, before the nonlinearity,
and the layer before it drops its bias (BN's beta does that job)."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from .registry import has_shift, norm_factory
from .norms import BatchNormBase, fold_batchnorm

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "linear": nn.Identity,
}
INITS = ("torch_default", "gaussian", "lecun_uniform", "glorot_uniform")


def activation(name: str) -> nn.Module:
    """Return a fresh activation module by name (``sigmoid``, ``tanh``, ``relu``, ``linear``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def init_linear(layer: nn.Linear | nn.Conv2d, scheme: str, std: float = 0.01) -> None:
    """Initialise a layer's weight in place (``gaussian`` uses ``std``); biases start at zero."""
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(INITS)}")
    w = layer.weight
    fan_in = w[0].numel()
    with torch.no_grad():
        if scheme == "gaussian":
            w.normal_(0.0, std)
        elif scheme == "lecun_uniform":
            bound = math.sqrt(3.0 / fan_in)
            w.uniform_(-bound, bound)
        elif scheme == "glorot_uniform":
            nn.init.xavier_uniform_(w)
        if layer.bias is not None and scheme != "torch_default":
            layer.bias.zero_()


def _norm_maker(norm: str | Callable[[int], nn.Module], dims: int) -> Callable[[int], nn.Module]:
    """Return ``width -> layer`` for a norm given by name (checked now) or as a factory."""
    return norm_factory(norm, dims) if isinstance(norm, str) else norm


PLACEMENTS = ("before", "after")   # the norm before or after each hidden nonlinearity
DROPOUT_PLACES = ("none", "before_bn", "after_bn", "last_only")


def mlp(widths: tuple[int, ...] | list[int], *, activation_name: str = "sigmoid",
        norm: str | Callable[[int], nn.Module] = "none", init: str = "torch_default",
        init_std: float = 0.01, placement: str = "before", dropout: float = 0.0,
        dropout_place: str = "none", init_scale: float = 1.0) -> nn.Sequential:
    """Return an MLP ``widths[0] -> ... -> widths[-1]``: per hidden layer Linear → norm →
    activation (``placement="after"``: Linear → activation → norm), the norm by name from
    ``bn_utils.nn.registry`` or a factory of width, and a plain Linear output layer (logits).
    A Linear drops its bias when the norm right after it has a learned shift (BN's beta).
    Dropout of rate ``dropout`` goes ``before_bn`` (right after each hidden Linear),
    ``after_bn`` (after each hidden block) or ``last_only`` (before the output layer);
    ``init_scale`` multiplies the hidden layers' initial weights."""
    if len(widths) < 2 or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"widths={widths!r} must be two or more positive integers")
    if placement not in PLACEMENTS or dropout_place not in DROPOUT_PLACES:
        raise ValueError(f"placement={placement!r} / dropout_place={dropout_place!r}: choose from "
                         f"{PLACEMENTS} / {DROPOUT_PLACES}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
    activation(activation_name)  # fail early on a bad name
    make = _norm_maker(norm, dims=1)
    layers: list[nn.Module] = []
    n_hidden = len(widths) - 2
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        hidden = i < n_hidden
        norm_layer = make(fan_out) if norm != "none" and hidden else None   # no RNG drawn: order is free
        shifted = norm_layer is not None and placement == "before" and has_shift(norm_layer)
        linear = nn.Linear(fan_in, fan_out, bias=not shifted)
        init_linear(linear, init, init_std)
        if hidden and init_scale != 1.0:
            with torch.no_grad():
                linear.weight.mul_(init_scale)
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        layers += [linear] + (drop if hidden and dropout_place == "before_bn" else [])
        if hidden:
            block = [norm_layer] if norm_layer is not None else []
            act = [activation(activation_name)]
            layers += block + act if placement == "before" else act + block
            if dropout_place == "after_bn" or (dropout_place == "last_only" and i == n_hidden - 1):
                layers += drop
    return nn.Sequential(*layers)


def activation_inputs(model: nn.Sequential) -> list[int]:
    """Return the indices of the modules whose output feeds a nonlinearity (the pre-activations)."""
    acts = tuple(ACTIVATIONS[a] for a in ACTIVATIONS)
    return [i - 1 for i, m in enumerate(model) if isinstance(m, acts) and i > 0]


# ---------------------------------------------------------------------------------------------
# Convolutional and deep linear networks (Santurkar et al. 2018, chapters 7 and 8)


# Channels per 3x3 convolution ("M": 2x2 max-pooling), the VGG configurations of Simonyan &
# Zisserman as commonly adapted to 32x32 CIFAR images (one linear classifier after the last pool).
VGG_CONFIGS: dict[str, tuple] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}



def vgg(config: str = "vgg16", *, width: float = 1.0, norm: str | Callable[[int], nn.Module] = "none",
        num_classes: int = 10, in_channels: int = 3, init: str = "glorot_uniform") -> nn.Sequential:
    """Return a VGG for 32x32 images: per entry of ``VGG_CONFIGS[config]`` a 3x3 convolution →
    norm → ReLU (channels × ``width``, at least 1) or a 2x2 max-pool, then one linear classifier.
    A convolution drops its bias when the norm after it has a learned shift (BN's beta)."""
    if config not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG {config!r}; choose one of {', '.join(VGG_CONFIGS)}")
    if not (width > 0):
        raise ValueError(f"width={width!r} must be positive")
    make = _norm_maker(norm, dims=2)
    layers: list[nn.Module] = []
    channels = in_channels
    for entry in VGG_CONFIGS[config]:
        if entry == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        out = max(1, round(entry * width))
        norm_layer = make(out)
        conv = nn.Conv2d(channels, out, 3, padding=1, bias=not has_shift(norm_layer))
        init_linear(conv, init)
        layers += [conv, norm_layer, nn.ReLU()]
        channels = out
    head = nn.Linear(channels, num_classes)
    init_linear(head, init)
    return nn.Sequential(*layers, nn.Flatten(), head)


def deep_linear(depth: int = 25, width: int = 10, *, norm: str | Callable[[int], nn.Module] = "none",
                init: str = "glorot_uniform") -> nn.Sequential:
    """Return a deep linear network: ``depth`` bias-free ``width x width`` linear layers, with a
    norm layer after each but the last (no nonlinearity anywhere)."""
    if not isinstance(depth, int) or depth < 1 or not isinstance(width, int) or width < 1:
        raise ValueError(f"depth={depth!r} and width={width!r} must be positive integers")
    make = _norm_maker(norm, dims=1)
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(width, width, bias=False)
        init_linear(linear, init)
        layers.append(linear)
        if i < depth - 1:
            layers.append(make(width))
    return nn.Sequential(*layers)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Return the convolutional and linear layers of ``model`` in registration (forward) order:
    "layer k" of the chapters is ``weight_layers(model)[k - 1]``."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def relu_inputs(model: nn.Sequential) -> list[nn.Module]:
    """Return the modules of a Sequential whose output enters a ReLU (for the VGG: the norm
    layers, or the identities that stand in for them), in forward order."""
    return [model[i - 1] for i, m in enumerate(model) if isinstance(m, nn.ReLU) and i > 0]


def is_bn_layer(module: nn.Module) -> bool:
    """Return whether ``module`` is a BN layer, torch's or ours (1d or 2d): the package's one check."""
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, BatchNormBase))


def bn_layers(model: nn.Module) -> list[nn.Module]:
    """Return the BN layers of ``model`` (torch's or ours, 1d or 2d), in registration order."""
    return [m for m in model.modules() if is_bn_layer(m)]


# ---------------------------------------------------------------------------------------------
# A small MNIST conv net, and the same net with its BN layers folded in (chapter 2)


def small_convnet(channels: tuple = (32, 64, 64)) -> nn.Sequential:
    """Return a small MNIST conv net: (Conv 3×3 → BN → ReLU) per width, pooling, a linear head."""
    layers: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(c_in, c, 3, padding=1, stride=1 if i == 0 else 2, bias=False),
                   nn.BatchNorm2d(c), nn.ReLU()]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
    return nn.Sequential(*layers)


def fold_model(model: nn.Sequential) -> nn.Sequential:
    """Return a copy of ``model`` in eval mode with every (Conv2d or Linear, BN) pair replaced by
    one layer with the BN's eval-mode affine map folded in (``norms.fold_batchnorm``)."""
    layers, i = [], 0
    mods = list(model)
    while i < len(mods):
        layer = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and nxt is not None and bn_layers(nxt) == [nxt]:
            layers.append(fold_batchnorm(layer, nxt))
            i += 2
        else:
            layers.append(copy.deepcopy(layer))
            i += 1
    return nn.Sequential(*layers).eval()


def fold_nested(model: nn.Module) -> nn.Module:
    """Return a copy of ``model`` in eval mode in which every (Conv2d or Linear, BN) pair that
    follows each other inside an ``nn.Sequential`` (at any depth) is one layer with the BN folded
    in (the BN becomes ``nn.Identity``); conv weights keep their memory format. Its outputs equal
    the eval-mode outputs of ``model`` up to float rounding, with fewer operators (evaluation)."""
    out = copy.deepcopy(model).eval()
    for seq in [m for m in out.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            layer, bn = seq[i], seq[i + 1]
            if isinstance(layer, (nn.Conv2d, nn.Linear)) and bn_layers(bn) == [bn]:
                folded = fold_batchnorm(layer, bn)
                if layer.weight.ndim == 4 and layer.weight.is_contiguous(memory_format=torch.channels_last):
                    folded = folded.to(memory_format=torch.channels_last)
                seq[i], seq[i + 1] = folded, nn.Identity()
    return out
