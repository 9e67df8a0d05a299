"""The training loop: it learns, records, stops on divergence, resumes, and hooks leave no trace."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import Planted
from torch import nn

from bn_utils import data, runtime
from bn_utils.training import train
from bn_utils.nn import models


def _toy(n=256, d=20, classes=4, seed=0):
    """A linearly separable toy problem (x, y)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, classes, generator=g)
    return x, (x @ w).argmax(1)


def _run(norm="bn", steps=60, lr=0.5, hooks=None, checkpoint=None, checkpoint_every=0, eval_every=20,
         identity=None):
    x, y = _toy()
    runtime.seed_everything(0)
    model = models.mlp((20, 32, 32, 4), activation_name="relu", norm=norm)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    hist = train.fit(model, data.batches(x, y, 32, seed=0), steps=steps, optimizer=opt,
                     eval_fn=lambda m: train.evaluate(m, x, y), eval_every=eval_every, log_every=10,
                     hooks=hooks, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                     identity=identity, progress=False)
    return model, hist


@pytest.mark.parametrize("norm", ["none", "bn"])
def test_fit_learns_a_separable_problem(norm):
    _, hist = _run(norm, lr=0.1, steps=100)
    assert hist.evals["accuracy"][0] < 0.6 < 0.9 < hist.evals["accuracy"][-1]
    assert hist.evals["loss"][-1] < hist.evals["loss"][0] / 2
    assert not hist.diverged and hist.steps_done == 100


def test_history_logs_and_evaluates_on_schedule():
    _, hist = _run(steps=50, eval_every=20)
    assert hist.step == [10, 20, 30, 40, 50]
    assert hist.eval_step == [0, 20, 40, 50]
    assert len(hist.evals["accuracy"]) == len(hist.evals["loss"]) == 4
    assert hist.lr == [0.5] * 5 and hist.seconds > 0


def test_a_loss_that_becomes_inf_stops_the_run_and_is_recorded():
    _, hist = _run(norm="none", lr=1e6, steps=200)
    assert hist.diverged and hist.diverged_at == hist.step[-1] < 200
    assert not math.isfinite(hist.loss[-1])
    assert hist.steps_done == hist.diverged_at


def test_lr_schedule_is_applied_before_each_step():
    x, y = _toy()
    model = models.mlp((20, 8, 4))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    seen = []
    hist = train.fit(model, data.batches(x, y, 32), steps=30, optimizer=opt, log_every=10,
                     lr_at=lambda step: seen.append(step) or 0.1 / (1 + step), progress=False)
    assert seen == list(range(30))
    assert hist.lr == pytest.approx([0.1 / 10, 0.1 / 20, 0.1 / 30])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 30)


def test_measuring_hooks_do_not_change_the_trajectory():
    def meddle(step, model, x, y):
        # what a careless measurement does: train-mode forwards (BN buffers move), gradients,
        # random draws
        model.train()
        model(x + torch.randn_like(x)).sum().backward()
        torch.rand(100)

    _, plain = _run(steps=40)
    _, measured = _run(steps=40, hooks={0: [meddle], 15: [meddle], 39: [meddle]})
    _, every_step = _run(steps=40, hooks=meddle)
    assert plain.loss == measured.loss == every_step.loss
    assert plain.evals == measured.evals


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_result(tmp_path):
    ckpt = tmp_path / "run.pt"
    model_ref, ref = _run(steps=40)

    def crash(step, model, x, y):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(steps=40, checkpoint=ckpt, checkpoint_every=10, hooks={25: [crash]})
    assert ckpt.exists()
    model_resumed, resumed = _run(steps=40, checkpoint=ckpt, checkpoint_every=10)
    assert resumed.steps_done == 40 and resumed.step == ref.step
    assert resumed.loss == pytest.approx(ref.loss, rel=1e-6)
    assert resumed.evals["accuracy"] == ref.evals["accuracy"]
    for a, b in zip(model_ref.state_dict().values(), model_resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_nonpositive_steps_raise(steps):
    x, y = _toy()
    model = models.mlp((20, 4))
    with pytest.raises(ValueError, match=f"steps={steps!r} must be a positive integer"):
        train.fit(model, data.batches(x, y, 8), steps=steps,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_evaluate_restores_the_training_mode_and_counts_correctly():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([0, 1, 1, 0])
    model.train()
    assert train.accuracy(model, x, y, batch_size=3) == 0.75
    assert model.training


def test_scores_count_a_row_with_a_nan_logit_as_wrong_and_match_torch():
    logits = torch.tensor([[2.0, 1.0], [float("nan"), 0.0], [0.0, 3.0]])
    y = torch.tensor([0, 0, 0])
    assert train.scores(logits, y)["accuracy"] == pytest.approx(1 / 3)   # argmax picks the NaN: 0
    finite = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    assert train.scores(finite, labels)["loss"] == pytest.approx(F.cross_entropy(finite, labels).item())


def test_a_stacked_models_logits_are_scored_per_model_by_the_same_rule():
    # (models, classes, batch): model k's row is right where its argmax is the label and finite
    logits = torch.randn(3, 10, 8, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(2))
    logits[1, :, 0] = float("nan")
    got = train.correct(logits, y)
    assert got.shape == (3, 8) and not got[1, 0]
    for k in range(3):
        alone = train.correct(logits[k].t(), y)          # the same model's (batch, classes) logits
        assert torch.equal(got[k], alone)


def test_logits_in_batches_equal_one_pass_and_prepare_each_batch():
    torch.manual_seed(0)
    model, x = nn.Linear(4, 3), torch.randn(10, 4)
    with torch.no_grad():
        assert torch.allclose(train.logits(model, x, batch_size=3), model(x))
        assert torch.allclose(train.logits(model, x, 4, prepare=lambda xb: 2 * xb), model(2 * x))


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


def test_a_planted_pickle_checkpoint_is_refused_without_running(tmp_path):
    ckpt, marker = tmp_path / "run.pt", tmp_path / "marker"
    torch.save({"model": Planted(marker), "step": 3}, ckpt)
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} is not a plain checkpoint"):
        _run(steps=20, checkpoint=ckpt, checkpoint_every=10)
    assert not marker.exists()


def test_checkpoints_hold_only_what_weights_only_loading_reads(tmp_path):
    import numpy as np

    ckpt = tmp_path / "state.pt"
    train.save_checkpoint(ckpt, {"a": np.arange(3, dtype=np.float32), "b": np.float64(0.5),
                                 "c": [np.int64(2)], "t": torch.ones(2)})
    state = train.load_checkpoint(ckpt)
    assert state["a"] == [0.0, 1.0, 2.0] and state["b"] == 0.5 and state["c"] == [2]
    assert torch.equal(state["t"], torch.ones(2))


def test_a_loss_far_above_its_start_is_divergence_even_while_finite():
    x, y = _toy()
    model = models.mlp((20, 8, 4))
    calls = []

    def blowing_up(out, target):  # finite, but 1e20 times the loss after step 5
        calls.append(1)
        return F.cross_entropy(out, target) * (1.0 if len(calls) <= 5 else 1e20)

    hist = train.fit(model, data.batches(x, y, 32), steps=50, optimizer=torch.optim.SGD(
        model.parameters(), lr=0.0), loss_fn=blowing_up, log_every=5, progress=False)
    assert all(math.isfinite(v) for v in hist.loss)
    assert hist.diverged and hist.diverged_at == 10 == hist.steps_done
    assert hist.start_loss == pytest.approx(hist.loss[0], rel=0.5)


def test_is_diverged_compares_with_the_start():
    f = train.DIVERGENCE_FACTOR
    assert not train.is_diverged(2.3 * f * 0.999, 2.3) and train.is_diverged(2.3 * f * 1.001, 2.3)
    assert train.is_diverged(float("nan"), 2.3) and train.is_diverged(float("inf"), 2.3)
    assert list(train.is_diverged([1.0, 1e9, float("nan")], [1.0, 1.0, 1.0])) == [False, True, True]


def test_every_torch_load_in_the_package_is_weights_only():
    import re
    from pathlib import Path

    package = Path(train.__file__).parent
    calls = [(p.name, m.group(0)) for p in package.rglob("*.py")
             for m in re.finditer(r"torch\.load\([^)]*\)", p.read_text())]
    assert calls and all("weights_only=True" in call for _, call in calls), calls


def test_evaluates_at_listed_steps_too():
    x, y = _toy()
    model = models.mlp((20, 8, 4))
    hist = train.fit(model, data.batches(x, y, 32, seed=0), steps=30,
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     eval_fn=lambda m: {"per_model": torch.tensor([[1.0, 2.0]])},
                     eval_every=20, eval_steps=[5, 7], progress=False)
    assert hist.eval_step == [0, 5, 7, 20, 30]
    assert hist.evals["per_model"][0] == [[1.0, 2.0]]   # nested metrics stay nested


def _killed_at_25(ckpt, identity=None):
    """Leave the checkpoint a run of 40 steps writes at step 20 before it is killed at step 25."""
    def crash(step, model, x, y):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _run(steps=40, checkpoint=ckpt, checkpoint_every=10, hooks={25: [crash]}, identity=identity)


def test_a_checkpoint_of_another_run_is_refused_naming_the_file(tmp_path):
    ckpt = tmp_path / "run.pt"
    _killed_at_25(ckpt, identity={"name": "BN-x30_s1", "digest": "aaaa"})
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} belongs to another run.*delete it"):
        _run(steps=40, checkpoint=ckpt, checkpoint_every=10, identity={"name": "BN-x30_s0", "digest": "aaaa"})
    _, hist = _run(steps=40, checkpoint=ckpt, checkpoint_every=10,
                   identity={"name": "BN-x30_s1", "digest": "aaaa"})   # its own run resumes
    assert hist.steps_done == 40


@pytest.mark.parametrize("step", [-5, 0, 40, 1000, 2.5, True])
def test_a_checkpoint_step_outside_the_run_is_refused(tmp_path, step):
    ckpt = tmp_path / "run.pt"
    _killed_at_25(ckpt)
    state = train.load_checkpoint(ckpt)
    train.save_checkpoint(ckpt, {**state, "step": step})
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} is at step .*outside.*delete it"):
        _run(steps=40, checkpoint=ckpt, checkpoint_every=10)


def test_a_checkpoint_with_nan_weights_is_refused_not_trained_as_a_divergence(tmp_path):
    ckpt = tmp_path / "run.pt"
    _killed_at_25(ckpt)
    state = train.load_checkpoint(ckpt)
    name = next(iter(state["model"]))
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))
    train.save_checkpoint(ckpt, state)
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} has non-finite weights in '{name}'"):
        _run(steps=40, checkpoint=ckpt, checkpoint_every=10)


@pytest.mark.parametrize("damage", ["no model", "other width", "truncated"])
def test_a_damaged_checkpoint_fails_with_an_error_naming_the_file(tmp_path, damage):
    ckpt = tmp_path / "run.pt"
    _killed_at_25(ckpt)
    state = train.load_checkpoint(ckpt)
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:200])
    else:
        if damage == "no model":
            del state["model"]
        else:
            state["model"] = {k: torch.zeros(3) for k in state["model"]}
        train.save_checkpoint(ckpt, state)
    with pytest.raises(ValueError, match=f"checkpoint {ckpt} .*delete it to start the run afresh"):
        _run(steps=40, checkpoint=ckpt, checkpoint_every=10)
