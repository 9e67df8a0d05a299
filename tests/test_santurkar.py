"""Chapters 7-8 experiment code: measurements never change the trajectory, hooks' records
survive a resume, configs fail early, and record names with dots stay distinct."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_utils import data, models, results, train
from bn_utils.experiments import noise, santurkar as S


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread (two threads on busy shared cores cost ~10x)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _fit(norm: str, hooks_from, steps: int = 6, **fit_kwargs):
    """Train a tiny VGG on random images with the given hooks; return (history, model)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    cfg = noise.NoiseConfig.for_profile("smoke", vgg="vgg11", watch_layers=(2, 5), ics_layers=(3, 7),
                                        measure_every=2, vgg_steps=steps)
    run = S.Run("vgg", norm, cfg.vgg_lrs[0], 0)
    train.seed_everything(0)
    model = models.vgg("vgg11", width=1 / 32, norm=norm)
    ctx = S.Context(run, model, F.cross_entropy, x[:16], y[:16], steps)
    hooks = hooks_from(cfg, ctx) if hooks_from else None
    hist = train.fit(model, data.batches(x, y, 16, seed=0), steps=steps, log_every=1, hooks=hooks,
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False, **fit_kwargs)
    return hist, model


def _landscape_hooks(cfg, ctx):
    from bn_utils import measure

    def hook(step, model, x, y):
        out = measure.gradient_landscape(model, lambda m: F.cross_entropy(m(x), y), [0.05, 0.2, 0.4],
                                         seed=step)
        return {"beta": out["beta"], "losses": out["losses"]}
    return {0: [hook], 3: [hook]}


@pytest.mark.parametrize("norm", ["bn", "noisy_bn"])
def test_measurements_do_not_change_the_loss_curve(norm):
    plain, plain_model = _fit(norm, None)
    both = lambda cfg, ctx: {k: noise.make_hooks(cfg, ctx).get(k, []) + _landscape_hooks(cfg, ctx).get(k, [])  # noqa: E731
                             for k in range(6)}
    measured, measured_model = _fit(norm, both)
    assert measured.loss == plain.loss                      # bit for bit, noise draws included
    assert all(torch.equal(a, b) for a, b in zip(plain_model.state_dict().values(),
                                                   measured_model.state_dict().values()))
    assert measured.measure_step == [0, 2, 3, 4]
    assert len(measured.measures["ics_l2_L3"]) == 3 and len(measured.measures["beta"]) == 2
    assert np.asarray(measured.measures["act_pct_L5"]).shape == (3, 5)


def test_hook_measurements_survive_a_resume(tmp_path):
    ckpt = tmp_path / "run.pt"
    whole, _ = _fit("bn", noise.make_hooks, steps=6)
    _fit("bn", noise.make_hooks, steps=6, checkpoint=ckpt, checkpoint_every=4)
    assert ckpt.exists()                                    # left at step 4: as if killed there
    resumed, _ = _fit("bn", noise.make_hooks, steps=6, checkpoint=ckpt, checkpoint_every=4)
    assert resumed.measure_step == whole.measure_step
    assert resumed.measures == whole.measures
    assert resumed.loss == whole.loss


def test_configs_fail_early_and_runs_are_named_without_collisions():
    with pytest.raises(ValueError, match="watch_layers"):
        noise.NoiseConfig.for_profile("smoke", watch_layers=(14,))
    with pytest.raises(ValueError, match="train_probe"):
        noise.NoiseConfig.for_profile("smoke", train_probe=600)
    with pytest.raises(ValueError, match="bad run"):
        S.Run("resnet", "bn", 0.1, 0)
    cfg = noise.NoiseConfig.for_profile("quick")
    names = [r.name for r in noise.runs(cfg)]
    assert len(names) == len(set(names)) == 10
    assert "vgg_noisy_bn_lr0.1_s0" in names and "dln_bn_lr1e-07_s0" in names


def test_record_names_with_dots_do_not_collide():
    cfg = noise.NoiseConfig.for_profile("smoke")
    results.save("07_test", "run_lr0.1", cfg, {"a": np.arange(3)})
    results.save("07_test", "run_lr0.01", cfg, {"a": np.arange(5)})
    assert len(results.load("07_test", "run_lr0.1", cfg)["a"]) == 3
    assert len(results.load("07_test", "run_lr0.01", cfg)["a"]) == 5
    assert results.checkpoint_path("07_test", "run_lr0.1", cfg).name.endswith("__smoke__"
                                                                              f"{cfg.digest()}.pt")


def test_dln_data_is_a_linear_map_of_gaussian_inputs():
    cfg = noise.NoiseConfig.for_profile("smoke")
    x, y = S.dln_data(cfg, "cpu")
    assert x.shape == y.shape == (1000, 10)
    a = torch.linalg.lstsq(x, y).solution
    assert torch.allclose(x @ a, y, atol=1e-4)
    assert S.squared_error(x, y).item() == pytest.approx(((x - y) ** 2).sum().item())


def test_stacked_pads_runs_that_stopped_early():
    members = [{"k": np.array([1.0, 2, 3]), "s": np.array([0, 1, 2])}, {"k": np.array([4.0]), "s": np.array([0])}]
    x, ys = S.stacked(members, "k", "s")
    assert list(x) == [0, 1, 2] and np.isnan(ys[1, 1:]).all() and ys[1, 0] == 4
    assert list(itertools.chain(S.measure_steps(10, 4))) == [0, 4, 8]
