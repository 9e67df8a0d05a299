"""train.Autocast / amp_dtype: mixed precision as a model wrapper (fit stays unchanged).
(Kept apart from test_train.py, which the main branch has and this branch does not.)"""

import torch
from torch import nn

from bn_utils import train


def test_no_dtype_runs_the_model_unchanged_and_returns_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(6, 5)
    wrapped = train.Autocast(model, None)
    out = wrapped(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, model(x))
    assert set(wrapped.state_dict()) == {f"model.{k}" for k in model.state_dict()}


def test_bfloat16_autocast_returns_float32_and_keeps_bn_in_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    x = torch.randn(6, 5)
    out = train.Autocast(model, torch.bfloat16)(x)   # CPU autocast supports bfloat16
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, model(x), rtol=0.05, atol=0.05)
    assert model[1].running_mean.dtype == torch.float32 and model[1].weight.dtype == torch.float32


def test_amp_dtype_is_none_on_the_cpu():
    assert train.amp_dtype("cpu") is None
