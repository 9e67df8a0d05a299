"""Section 5c of chapter 02: BN at batch size 1, what torch's and our modules do with it, and why
one image in a conv net is instance normalisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import norms


def _outcome(layer: nn.Module, x: torch.Tensor) -> str:
    """Return ``ok`` if layer(x) runs, else the type and message of the error it raises."""
    try:
        with torch.no_grad():
            layer(x)
    except (ValueError, RuntimeError) as err:
        return f"{type(err).__name__}: {err}"
    return "ok"


BATCH_ONE_CASES = (  # (module, input shape, mode)
    ("BatchNorm1d", (1, 4), "train"),
    ("BatchNorm2d", (1, 4, 1, 1), "train"),
    ("BatchNorm2d", (1, 4, 5, 5), "train"),
    ("BatchNorm1d", (1, 4), "eval"),
)


def batch_size_one_rows(seed: int = 0) -> list[dict]:
    """Return, for each case of ``BATCH_ONE_CASES``, what torch's and our BN do with it."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for module, shape, mode in BATCH_ONE_CASES:
        x = torch.randn(shape, generator=gen)
        theirs = getattr(nn, module)(shape[1]).train(mode == "train")
        ours = getattr(norms, module)(shape[1]).train(mode == "train")
        rows.append({"module": module, "input": "×".join(map(str, shape)), "mode": mode,
                     "values per channel": x.numel() // shape[1],
                     "torch": _outcome(theirs, x), "ours": _outcome(ours, x)})
    return rows


def single_image_is_instance_norm(seed: int = 0) -> float:
    """Return max |BN2d(x) − InstanceNorm2d(x)| for one image x in train mode: with N = 1 the
    per-channel statistics are that image's own, over its H·W positions."""
    x = torch.randn(1, 3, 6, 5, generator=torch.Generator().manual_seed(seed)) * 2 + 1
    with torch.no_grad():
        return (norms.BatchNorm2d(3).train()(x) - F.instance_norm(x)).abs().max().item()
