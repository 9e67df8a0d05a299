"""What every chapter's setup cell needs: the style, the device line, and glue for prose numbers."""

from __future__ import annotations

import sys
from typing import Any

from .profiles import Config


def setup(cfg: Config | None = None):
    """Apply the plot style, print the profile, device and interpreter, and return the device."""
    import torch

    from . import plotting
    from .results import device_description
    from .train import default_device

    plotting.use_style()
    device = default_device()
    profile = cfg.profile if cfg is not None else "?"
    changes = cfg.changes() if cfg is not None else {}
    extra = f" with {', '.join(f'{k}={v!r}' for k, v in changes.items())}" if changes else ""
    print(f"profile: {profile}{extra}\ndevice: {device_description(device)}\n"
          f"torch {torch.__version__}, python {sys.executable}")
    return device


def glue(name: str, value: Any) -> Any:
    """Make ``value`` quotable in the chapter's prose as {glue:text}`name:.2f`; a no-op outside
    Jupyter Book (e.g. in Colab). Returns the value."""
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=False)
    return value
