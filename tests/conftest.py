"""Shared test set-up: tests never download, never write into the checkout's results/."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

os.environ["BN_OFFLINE"] = "1"          # tests never download
os.environ.setdefault("BN_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
if "BN_DATA_DIR" not in os.environ and (SHARED_DATA / "mnist.npz").exists():
    os.environ["BN_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """The tests use small tensors: a second OpenMP thread gains nothing on them, and on a busy
    2-core machine its spin-waiting made test files several times slower."""
    from bn_utils.runtime import cpu_threads

    with cpu_threads(1):
        yield


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """Every test writes its results under its own temporary folder."""
    monkeypatch.setenv("BN_RESULTS_DIR", str(tmp_path / "results"))


def _has(name: str) -> bool:
    folder = Path(os.environ.get("BN_DATA_DIR", "/nonexistent"))
    return (folder / f"{name}.npz").exists() or (folder / f"{name}_jpeg.npz").exists()


needs_mnist = pytest.mark.skipif(not _has("mnist"), reason="mnist.npz not in BN_DATA_DIR")
needs_cifar10 = pytest.mark.skipif(not _has("cifar10"), reason="CIFAR-10 not in BN_DATA_DIR")


class Planted:
    """A pickle that creates the file ``marker`` when it is unpickled: what a checkpoint planted
    in a shared results folder could do (tests check it never runs)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def small_nets(specs, fan_in=20):
    """Return models.mlp nets (fan_in-16-12-10) for (activation, bn, seed) triples."""
    import torch

    from bn_utils.nn import models

    nets = []
    for activation, bn, seed in specs:
        torch.manual_seed(seed)
        nets.append(models.mlp((fan_in, 16, 12, 10), activation_name=activation,
                               norm="bn" if bn else "none"))
    return nets


def max_state_error(a, b) -> float:
    """Return the largest difference between two modules' floating-point state."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k] - sb[k]).abs().max().item() for k in sa if sa[k].dtype.is_floating_point)


def assert_stack_equals_nets_in_eval_mode(stack, nets, x) -> None:
    """Assert that every model of a StackedMLP gives its ordinary net's eval-mode logits on x."""
    import torch

    stack.eval()
    with torch.no_grad():
        logits = stack(x)
        for i, net in enumerate(nets):
            torch.testing.assert_close(logits[i].t(), net.eval()(x), rtol=1e-5, atol=1e-5)
