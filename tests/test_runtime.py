"""bn_utils.runtime: the leaf module of runtime helpers."""

import ast
import stat
from pathlib import Path

import pytest
import torch

from bn_utils import runtime


def test_runtime_imports_nothing_of_the_package():
    tree = ast.parse(Path(runtime.__file__).read_text())
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.level or
                (n.module or "").startswith("bn_utils"))]
    assert relative == []


def test_eval_mode_restores_the_previous_mode_even_after_an_error():
    model = torch.nn.BatchNorm1d(3)
    with runtime.eval_mode(model):
        assert not model.training
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError), runtime.eval_mode(model):
        raise RuntimeError
    assert not model.training


def test_atomic_write_leaves_no_temporary_file_and_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "x.json"
    runtime.atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}" and list(target.parent.iterdir()) == [target]
    assert stat.S_IMODE(target.stat().st_mode) & 0o044 == 0o044  # readable by others


def test_seed_everything_repeats_the_same_numbers():
    runtime.seed_everything(3)
    a = torch.rand(3)
    runtime.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_median_seconds_calls_the_function_warmup_plus_repeats_times():
    calls = []
    runtime.median_seconds(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6


def test_bn_device_that_is_not_available_fails_naming_the_variable(monkeypatch):
    monkeypatch.setenv("BN_DEVICE", "cuda")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="BN_DEVICE"):
        runtime.default_device()


def test_default_device_follows_bn_device(monkeypatch):
    monkeypatch.setenv("BN_DEVICE", "cpu")
    assert runtime.default_device() == torch.device("cpu")


def test_alternating_medians_calls_every_function_once_per_round_after_the_warm_up():
    calls = []
    out = runtime.alternating_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                      repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4 and set(out) == {"a", "b"}
    assert all(v >= 0 for v in out.values())
