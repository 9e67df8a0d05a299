"""The package chapters 7 and 8 share, ``bn_utils.experiments.santurkar``: a training run's
measurements (both chapters' hooks together) never change its trajectory and survive a resume, a
VGG run records its accuracy as trained, record names with dots stay distinct, extra seeds are
stored as their own records and merged into a chapter's record, the helpers both chapters use (the
DLN's data, stacked runs, the counting loss, the learned rule, three significant digits, the seeds
shown), and both chapters' verdicts on too few seeds or on a network that did not learn. The
made-up records come from ``santurkar_helpers.py``."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_utils.book import results
from bn_utils import data, runtime
from bn_utils.training import train
from bn_utils.nn import models
from conftest import needs_cifar10
from bn_utils.experiments import (
    ch07_santurkar_noise as noise, santurkar, ch08_santurkar_smoothness as smoothness)
from santurkar_helpers import NOISE_ACC, THREE, _noise_record, _smoothness_record


def _fit(norm: str, hooks_from, steps: int = 6, **fit_kwargs):
    """Train a tiny VGG on random images with the given hooks; return (history, model)."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    cfg = noise.NoiseConfig.for_profile("smoke", vgg="vgg11", watch_layers=(2, 5), ics_layers=(3, 7),
                                        measure_every=2, vgg_steps=steps)
    run = santurkar.Run("vgg", norm, cfg.vgg_lrs[0], 0)
    runtime.seed_everything(0)
    model = models.vgg("vgg11", width=1 / 32, norm=norm)
    ctx = santurkar.Context(run, model, F.cross_entropy, x[:16], y[:16], steps)
    hooks = hooks_from(cfg, ctx) if hooks_from else None
    hist = train.fit(model, data.batches(x, y, 16, seed=0), steps=steps, log_every=1, hooks=hooks,
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False, **fit_kwargs)
    return hist, model


def _all_hooks(cfg, ctx):
    """Chapter 7's hooks (ICS, activations) and chapter 8's (landscape) at the same steps."""
    landscape_cfg = smoothness.SmoothnessConfig.for_profile("smoke", measure_every=cfg.measure_every,
                                                            n_step_sizes=3)
    first, second = noise.make_hooks(cfg, ctx), smoothness.make_hooks(landscape_cfg, ctx)
    return {k: first.get(k, []) + second.get(k, []) for k in set(first) | set(second)}


@pytest.mark.parametrize("norm", ["bn", "noisy_bn"])
def test_measurements_do_not_change_the_loss_curve(norm):
    plain, plain_model = _fit(norm, None)
    measured, measured_model = _fit(norm, _all_hooks)
    assert measured.loss == plain.loss                      # bit for bit, noise draws included
    assert all(torch.equal(a, b) for a, b in zip(plain_model.state_dict().values(),
                                                   measured_model.state_dict().values()))
    assert measured.measure_step == [0, 2, 4]
    assert len(measured.measures["ics_l2_L3"]) == 3 and len(measured.measures["ls_beta"]) == 3
    assert np.asarray(measured.measures["act_pct_L5"]).shape == (3, 5)
    assert np.asarray(measured.measures["ls_losses"]).shape == (3, 3)


def test_hook_measurements_survive_a_resume(tmp_path):
    ckpt = tmp_path / "run.pt"
    whole, _ = _fit("bn", noise.make_hooks, steps=6)
    _fit("bn", noise.make_hooks, steps=6, checkpoint=ckpt, checkpoint_every=4)
    assert ckpt.exists()                                    # left at step 4: as if killed there
    resumed, _ = _fit("bn", noise.make_hooks, steps=6, checkpoint=ckpt, checkpoint_every=4)
    assert resumed.measure_step == whole.measure_step
    assert resumed.measures == whole.measures
    assert resumed.loss == whole.loss


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
    x, y = santurkar.dln_data(cfg, "cpu")
    assert x.shape == y.shape == (1000, 10)
    a = torch.linalg.lstsq(x, y).solution
    assert torch.allclose(x @ a, y, atol=1e-4)
    assert santurkar.squared_error(x, y).item() == pytest.approx(((x - y) ** 2).sum().item())


def test_stacked_pads_runs_that_stopped_early():
    members = [{"k": np.array([1.0, 2, 3]), "s": np.array([0, 1, 2])}, {"k": np.array([4.0]), "s": np.array([0])}]
    x, ys = santurkar.stacked(members, "k", "s")
    assert list(x) == [0, 1, 2] and np.isnan(ys[1, 1:]).all() and ys[1, 0] == 4
    assert list(itertools.chain(santurkar.measure_steps(10, 4))) == [0, 4, 8]


def test_counting_loss_returns_the_loss_and_counts_hits_per_interval():
    out, y = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 1, 1])
    counting = santurkar.CountingLoss()
    assert torch.equal(counting(out, y), F.cross_entropy(out, y))
    counting(out[:1], y[:1])
    assert counting.take() == pytest.approx(3 / 4)          # 2 of 3, then 1 of 1
    assert np.isnan(counting.take())                         # nothing scored since


def test_a_noisy_nets_training_accuracy_is_measured_with_its_noise_on():
    """The accuracy a noisy-BN network has as it trains (noise on, batch statistics), counted by
    the loss on the batches it trains on, is not the accuracy of the noise-free evaluation-mode
    network on the same images."""
    from torch import nn

    from bn_utils.nn.variants import NoisyBatchNorm1d

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 20, generator=gen)
    y = (x @ torch.randn(20, 4, generator=gen)).argmax(1)          # a learnable labelling
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16, bias=False), NoisyBatchNorm1d(16, n_mu=5.0, n_sigma=6.0),
                          nn.ReLU(), nn.Linear(16, 4))
    counting = santurkar.CountingLoss()
    train.fit(model, itertools.repeat((x, y)), steps=30, loss_fn=counting, log_every=30,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), progress=False)
    counting.take()
    fit_again = train.fit(model, itertools.repeat((x, y)), steps=20, loss_fn=counting, log_every=20,
                          optimizer=torch.optim.SGD(model.parameters(), lr=0.0), progress=False)
    as_trained, eval_mode = counting.take(), train.accuracy(model, x, y)
    assert fit_again.steps_done == 20 and eval_mode > 0.6, eval_mode      # it did learn
    assert abs(as_trained - eval_mode) > 0.03, (as_trained, eval_mode)  # 2,560 predictions apart


@needs_cifar10
def test_a_vgg_run_records_its_training_accuracy_as_trained_beside_eval_mode():
    cfg = noise.NoiseConfig.for_profile("smoke")
    out = santurkar.train_run(
        "07_test", cfg, santurkar.Run("vgg", "noisy_bn", cfg.vgg_lrs[0], 0), lambda c, ctx: {}
    )
    batch, probe = out["train_batch_accuracy"], out["train_accuracy"]
    assert len(batch) == len(probe) == len(out["eval_step"]) and np.isnan(batch[0])
    assert np.isfinite(batch[1:]).all() and ((0 <= batch[1:]) & (batch[1:] <= 1)).all()


def test_the_learned_rule_is_written_with_the_constants_learned_uses():
    text = santurkar.learned_rule()
    assert "above 20 % (twice chance; VGG)" in text and "at most 50 % of the initial loss (DLN)" in text
    assert noise.learned_rule is smoothness.learned_rule is santurkar.learned_rule   # one text, both pages


def test_extra_seeds_are_stored_as_their_own_records_and_merged_into_the_chapters_record():
    cfg = noise.NoiseConfig.for_profile("reference")
    assert [c.seeds for c in cfg.extra_configs()] == [(1,), (2,)]
    assert cfg.extra_configs()[0].replace(seeds=(0,)).digest() == cfg.digest()   # only the seed differs
    extra = noise.extra_runs(cfg)
    names = {r.name for _, r in extra}
    assert "vgg_noisy_bn_lr0.1_s2" in names and "dln_none_lr1e-07_s1" in names
    assert not any(n.startswith("vgg_") and "lr0.01" in n for n in names)    # the LR where one did not learn
    assert noise.NoiseConfig.for_profile("quick").extra_configs() == []
    # a stored extra run is merged in; one of another config (a changed step count) is not
    record = results.Record(noise.CHAPTER, "noise", cfg.to_dict(), {"vgg_bn_lr0.1_s0/x": 1.0})
    c1, run = next((c, r) for c, r in extra if r.name == "vgg_bn_lr0.1_s1")
    results.save(noise.CHAPTER, run.name, c1, {"x": 2.0})
    results.save(noise.CHAPTER, "vgg_none_lr0.1_s1", c1.replace(vgg_steps=10), {"x": 3.0})
    merged = noise.with_extra_seeds(record)
    assert merged.metrics == {"vgg_bn_lr0.1_s0/x": 1.0, "vgg_bn_lr0.1_s1/x": 2.0}
    assert merged.meta["extra_runs"] == ["vgg_bn_lr0.1_s1"] and noise.with_extra_seeds(merged).metrics == merged.metrics


# ---------------------------------------------------------------------------------------------
# Verdicts asked to decide with less than they need: fewer seeds than a spread needs say "1 seed:
# not decided"; a comparison of a network that did not learn is not comparable

STUCK = tuple((a, "none", lr) for a, lrs in (("vgg", (0.1, 0.01)), ("dln", (1e-6, 1e-7))) for lr in lrs)


CHANCE_ACC = {"none": 0.09, "bn": 0.12, "l1": 0.12, "l2": 0.12, "linf": 0.12}


THIN = [  # (id, rows of a chapter's claims, which rows, the verdict each must have)
    ("07-one-seed", lambda: noise.claim_rows(_noise_record(NOISE_ACC)), slice(None), "1 seed: not decided"),
    ("07-ics-standard-network-at-chance-half-way",
     lambda: noise.claim_rows(_noise_record(NOISE_ACC, seeds=(0, 1, 2), stuck=STUCK)),
     slice(-1, None), "not comparable"),
    ("08-one-seed", lambda: smoothness.claim_rows(_smoothness_record(2.0, seeds=(0,))), slice(None),
     "1 seed: not decided"),
    ("08-nobody-learned", lambda: smoothness.claim_rows(_smoothness_record(2.0, acc=CHANCE_ACC)),
     slice(0, 3), "not comparable"),
]


@pytest.mark.parametrize("rows, which, verdict", [v[1:] for v in THIN], ids=[v[0] for v in THIN])
def test_a_verdict_on_too_few_seeds_or_a_network_that_did_not_learn_says_so(rows, which, verdict):
    got = rows()[which]
    assert got and all(r["verdict"] == verdict for r in got), [r["verdict"] for r in got]


# ---------------------------------------------------------------------------------------------
# How chapters 7 and 8 write their numbers (the bands each draws: in its own chapter's file)

def test_fixed_sig_keeps_three_significant_digits_so_one_column_reads_alike():
    values = (1.0, 0.613, 0.0338, 2e6, 2.03e6, 14_900, 0.17, 1.35e-6)
    assert [santurkar.fixed_sig(v) for v in values] == \
        ["1.00", "0.613", "0.0338", "2.00e+06", "2.03e+06", "14,900", "0.170", "1.35e-06"]
    assert santurkar.fixed_sig(0.1, sign=True) == "+0.100" and santurkar.fixed_sig(0.0) == "0"
    assert santurkar.fmt_pm(0.00184, 0.0000642, 3, significant=True) == "0.00184 ± 6.42e-05"


def test_seeds_shown_says_which_learning_rate_has_fewer_seeds():
    record = _noise_record(NOISE_ACC, seeds=THREE)
    runs = noise.unpack(record)
    for name in [n for n in runs if "lr0.01" in n and not n.endswith("_s0")]:
        del runs[name]   # the reference record: the VGGs at LR 0.01 have seed 0 only
    groups = {lr: [santurkar.group("vgg", norm, lr) for norm in ("none", "bn")] for lr in (0.1, 0.01)}
    assert santurkar.seeds_shown(runs, groups) == \
        "3 seeds per network at learning rate 0.1, 1 seed per network at learning rate 0.01"
    assert santurkar.seeds_shown(runs, {0.1: groups[0.1]}) == "3 seeds per network"
