"""Chapters 7-8 experiment code: measurements never change the trajectory, hooks' records
survive a resume, configs fail early, and record names with dots stay distinct."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_utils import data, models, results, train
from conftest import needs_cifar10
from bn_utils.experiments import noise, santurkar as S, smoothness


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


def test_smoothness_config_runs_and_step_sizes():
    cfg = smoothness.SmoothnessConfig.for_profile("quick")
    names = [r.name for r in smoothness.runs(cfg)]
    # one run per VGG norm, the two paper nets again at the large rate, one per DLN norm
    assert len(names) == len(set(names)) == len(cfg.vgg_norms) + 2 + len(cfg.dln_norms)
    assert "vgg_bn_lr0.5_s0" in names and "dln_l1_lr1e-06_s0" in names
    eta = cfg.step_sizes("vgg")
    assert eta[0] == pytest.approx(0.05) and eta[-1] == pytest.approx(0.4) and len(eta) == cfg.n_step_sizes
    assert cfg.step_sizes("dln")[-1] == pytest.approx(30e-6)
    with pytest.raises(ValueError, match="step_range"):
        smoothness.SmoothnessConfig.for_profile("smoke", step_range=(4.0, 0.5))
    with pytest.raises(ValueError, match="must include"):
        smoothness.SmoothnessConfig.for_profile("smoke", vgg_norms=("bn", "l1"))
    with pytest.raises(ValueError, match="lp_over"):
        smoothness.SmoothnessConfig.for_profile("smoke", lp_over="channel")


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


def test_counting_loss_returns_the_loss_and_counts_hits_per_interval():
    out, y = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([0, 1, 1])
    counting = S.CountingLoss()
    assert torch.equal(counting(out, y), F.cross_entropy(out, y))
    counting(out[:1], y[:1])
    assert counting.take() == pytest.approx(3 / 4)          # 2 of 3, then 1 of 1
    assert np.isnan(counting.take())                         # nothing scored since


def test_a_noisy_nets_training_accuracy_is_measured_with_its_noise_on():
    """The accuracy a noisy-BN network has as it trains (noise on, batch statistics), counted by
    the loss on the batches it trains on, is not the accuracy of the noise-free evaluation-mode
    network on the same images."""
    from torch import nn

    from bn_utils.norm_variants import NoisyBatchNorm1d

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 20, generator=gen)
    y = (x @ torch.randn(20, 4, generator=gen)).argmax(1)          # a learnable labelling
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16, bias=False), NoisyBatchNorm1d(16, n_mu=5.0, n_sigma=6.0),
                          nn.ReLU(), nn.Linear(16, 4))
    counting = S.CountingLoss()
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
    out = S.train_run("07_test", cfg, S.Run("vgg", "noisy_bn", cfg.vgg_lrs[0], 0), lambda c, ctx: {})
    batch, probe = out["train_batch_accuracy"], out["train_accuracy"]
    assert len(batch) == len(probe) == len(out["eval_step"]) and np.isnan(batch[0])
    assert np.isfinite(batch[1:]).all() and ((0 <= batch[1:]) & (batch[1:] <= 1)).all()


def test_beta_comparison_reads_beta_at_step_0_across_lrs_and_at_a_common_loss():
    cfg = smoothness.SmoothnessConfig.for_profile("smoke", lr=0.1, large_lr=0.5)
    metrics = {}
    for norm, lr, loss, beta in (("none", 0.1, [2.3, 1.5, 1.0], [10.0, 20.0, 21.0]),
                                 ("bn", 0.1, [2.3, 1.2, 0.8], [5.0, 18.0, 19.0]),
                                 ("none", 0.5, [2.3, 2.0, 1.9], [10.0, 4.0, 4.2]),
                                 ("bn", 0.5, [2.3, 1.0, 0.7], [5.0, 3.0, 3.5])):
        name = S.group("vgg", norm, lr) + "_s0"
        metrics[f"{name}/ls_loss"], metrics[f"{name}/ls_beta"] = loss, beta
    record = results.Record("08", "smoothness", cfg.to_dict(), metrics)
    rows = smoothness.beta_comparison(record, "vgg")
    assert rows[("none", 0.1)]["beta_init"] == 10.0 and rows[("bn", 0.1)]["beta_init"] == 5.0
    assert rows[("bn", 0.5)]["beta"] == 3.5 and rows[("bn", 0.5)]["beta_lr_over_2"] == pytest.approx(0.875)
    # the common level at LR 0.1 is 1.0 (standard's lowest): standard meets it at its last
    # measurement, BN first at its second (1.2 > 1.0, so its third)
    assert rows[("none", 0.1)]["loss_level"] == 1.0
    assert rows[("none", 0.1)]["beta_at_level"] == 21.0 and rows[("bn", 0.1)]["beta_at_level"] == 19.0
    assert rows[("none", 0.5)]["loss_level"] == 1.9 and rows[("bn", 0.5)]["beta_at_level"] == 3.0
    assert len(smoothness.beta_table(record).rows) == 4


def _noise_record(acc: dict, ics_bn: tuple = (0.5, 0.5), drop: str = "", ics_bn_dln: tuple | None = None):
    """A chapter 7 record from made-up runs: final training accuracy (noise on) per network,
    distributions that move twice as much with noise (with noise, the units' variance is 4, else
    1), and BN's (rel, cos) ICS (in the DLN: ``ics_bn_dln``, default the same) against the
    standard network's (0.4, 0.6); ``drop``: a network left out."""
    cfg = noise.NoiseConfig.for_profile("smoke")
    metrics = {}
    for run in noise.runs(cfg):
        if run.norm == drop:
            continue
        name, m = run.name, {}
        if run.arch == "vgg" and run.lr == cfg.vgg_lrs[0]:
            m.update(train_batch_accuracy=[np.nan, acc[run.norm]], train_accuracy=[0.1, acc[run.norm]],
                     test_accuracy=[0.1, acc[run.norm] - 0.05], measure_step=[0, 4, 8])
            step = 2.0 if "nois" in run.norm else 1.0
            for k in cfg.watch_layers:
                m[f"act_mean_L{k}"] = [[0.0] * 3, [step] * 3, [2 * step] * 3]
                m[f"act_var_L{k}"] = [[step ** 2] * 3] * 3
        layers = cfg.ics_layers if run.arch == "vgg" else cfg.dln_ics_layers
        bn_ics = ics_bn if run.arch == "vgg" or ics_bn_dln is None else ics_bn_dln
        rel, cos = bn_ics if run.norm == "bn" else (0.4, 0.6)
        for k in layers:
            m[f"ics_l2_L{k}"], m[f"ics_cos_L{k}"], m[f"grad_norm_L{k}"] = [rel], [cos], [1.0]
        metrics.update({f"{name}/{key}": v for key, v in m.items()})
    return results.Record(noise.CHAPTER, "noise", cfg.to_dict(), metrics)


def test_noise_headlines_apply_their_stated_rules():
    record = _noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.56, "noise": 0.2})
    shift = noise.shift_summary(record)
    deep = record.config["watch_layers"][-1]
    assert shift["noisy_bn"][f"spread_L{deep}"][0] == 2.0 and shift["none"][f"spread_L{deep}"][0] == 1.0
    rows = {r["claim"].split(" (")[0]: r for r in noise.headlines(record)}
    # twice the absolute drift, but with twice the spread: the same relative drift
    assert rows["noisy BN's layer inputs move more than the standard network's"]["shown?"] == "yes"
    relative = "noisy BN's layer inputs move more than the standard network's relative to each layer's own spread"
    assert rows[relative]["shown?"] == "no"
    nearly = rows["noisy BN trains nearly as well as BN"]
    assert nearly["shown?"] == "yes" and "keeps 92.0%" in nearly["ours"]   # 0.46 / 0.50
    assert rows["the same noise costs a standard network more than a BN network"]["shown?"] == "yes"
    assert rows["BN improves test accuracy"]["shown?"] == "yes"
    # BN's ICS larger (0.5 > 0.4) and its cosine smaller: it reduced ICS nowhere
    assert rows["BN does not reduce gradient-based ICS"]["ours"].startswith("BN reduced it on both measures in 0 of 8")
    rows = noise.headlines(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.5, "noise": 0.2},
                                         ics_bn=(0.3, 0.7)))
    assert [r["shown?"] for r in rows] == ["yes", "no", "no", "no", "yes", "yes", "no"]
    assert "8 of 8" in rows[-1]["ours"] and "VGG LR 0.1 layer 3" in rows[-1]["ours"]
    missing = noise.headlines(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.5}, drop="noise"))
    assert [r["shown?"] for r in missing].count("not run") == 1


def test_ics_reductions_count_only_cases_reduced_on_both_measures():
    acc = {"none": 0.5, "bn": 0.6, "noisy_bn": 0.5, "noise": 0.2}
    # VGG: BN smaller relative change and larger cosine (reduced); DLN: smaller change only
    n, total, cases = noise.ics_reductions(_noise_record(acc, ics_bn=(0.3, 0.7), ics_bn_dln=(0.3, 0.5)))
    assert (n, total) == (4, 8) and all(c.startswith("VGG") for c in cases)


def test_shares_kept_above_chance_are_undefined_when_the_clean_network_did_not_learn():
    # the standard network at chance: no gain for its noisy copy to keep, so no verdict either way
    rows = noise.headlines(_noise_record({"none": 0.1, "bn": 0.6, "noisy_bn": 0.58, "noise": 0.3}))
    control = next(r for r in rows if r["claim"].startswith("the same noise"))
    assert control["shown?"] == "no" and "undefined" in control["ours"]
    at_chance = noise.headlines(_noise_record({"none": 0.1, "bn": 0.11, "noisy_bn": 0.12, "noise": 0.1}))
    assert all(r["shown?"] == "no" for r in at_chance[2:6])   # nothing learned: no claim about learning


def _smoothness_record(bn_beta: float, drop_lp: bool = False, dln_bn_beta: float | None = None,
                       acc: dict | None = None):
    """A chapter 8 record from made-up runs: BN's β (and loss range, gradient change) is
    ``bn_beta`` (in the DLN ``dln_bn_beta``, default the same) against the standard network's 10;
    the ℓp nets train best (``acc``: final training accuracy per network)."""
    cfg = smoothness.SmoothnessConfig.for_profile("smoke", lr=0.1, large_lr=0.5)
    acc = acc or {"none": 0.3, "bn": 0.6, "l1": 0.5, "l2": 0.5, "linf": 0.5}
    metrics = {}
    for run in smoothness.runs(cfg):
        if drop_lp and run.norm in smoothness.LP_NETS:
            continue
        normed = dln_bn_beta if run.arch == "dln" and dln_bn_beta is not None else bn_beta
        b = normed if run.norm != "none" else 10.0
        m = {"ls_losses": [[1.0, 1.0 + b]] * 2, "ls_grad_diffs": [[0.0, b]] * 2, "ls_beta": [b, b],
             "ls_loss": [2.3, 1.0], "train_accuracy": [0.1, acc[run.norm]], "test_accuracy": [0.1, 0.2],
             "loss": [5.0, 1.0]}
        metrics.update({f"{run.name}/{key}": v for key, v in m.items()})
    return results.Record(smoothness.CHAPTER, "smoothness", cfg.to_dict(), metrics)


def test_smoothness_headlines_need_the_claim_in_both_networks():
    assert [r["shown?"] for r in smoothness.headlines(_smoothness_record(2.0))] == ["yes"] * 6
    rough = smoothness.headlines(_smoothness_record(20.0))
    assert [r["shown?"] for r in rough] == ["no", "no", "no", "no", "yes", "yes"]
    assert "VGG: standard 10, BN 20" in rough[2]["ours"]
    assert smoothness.headlines(_smoothness_record(2.0, drop_lp=True))[-1]["shown?"] == "not run"
    assert len(smoothness.claims_table(_smoothness_record(2.0)).rows) == 6
    # smoother in the VGG, rougher in the DLN: the claims about both networks are not shown
    mixed = smoothness.headlines(_smoothness_record(2.0, dln_bn_beta=20.0))
    assert [r["shown?"] for r in mixed[:3]] == ["no", "no", "no"]
    # nobody learns: BN "tolerating" the larger rate at chance accuracy shows nothing
    chance = {"none": 0.09, "bn": 0.12, "l1": 0.12, "l2": 0.12, "linf": 0.12}
    assert [r["shown?"] for r in smoothness.headlines(_smoothness_record(2.0, acc=chance))[4:]] == ["no", "no"]


def test_ics_summary_tells_a_swinging_cosine_from_an_uncorrelated_one():
    record = _noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.5, "noise": 0.2})
    cfg = noise.NoiseConfig.from_record(record)
    lr, k = cfg.dln_lrs[0], cfg.dln_ics_layers[-1]
    name = next(r.name for r in noise.runs(cfg) if (r.arch, r.norm, r.lr) == ("dln", "bn", lr))
    swinging = [-0.95, 0.9, -0.9, 0.95, np.nan]   # median near 0, yet half the time G' opposes G
    record.metrics.update({f"{name}/ics_cos_L{k}": swinging, f"{name}/ics_l2_L{k}": [1.0] * 5,
                           f"{name}/grad_norm_L{k}": [1.0] * 5})
    summary = noise.ics_summary(record, "dln")
    assert abs(summary[(lr, k, "bn")]["cos"]) < 0.1 and summary[(lr, k, "bn")]["anti"] == 0.5
    assert summary[(lr, k, "none")]["anti"] == 0.0
    assert "share cos < −½" in noise.ics_table(record, "dln").rows[0]


def test_edge_reading_says_whether_beta_sits_at_two_over_the_learning_rate():
    at_edge = {"none": {"beta": 19.0}, "bn": {"beta": 15.0}}          # β·LR/2 = 0.95, 0.75 at LR 0.1
    assert "both within a factor of two of 1" in smoothness.edge_reading(at_edge, 0.1)
    assert "0.95 without BN and 0.75 with it" in smoothness.edge_reading(at_edge, 0.1)
    far = {"none": {"beta": 19.0}, "bn": {"beta": 2.0}}               # BN: 0.10, far below the edge
    assert smoothness.edge_reading(far, 0.1).endswith("the standard network's within a factor of two of 1, BN's not")
    assert "neither" in smoothness.edge_reading({"none": {"beta": 100.0}, "bn": {"beta": 1.0}}, 0.1)


def test_the_lp_claim_needs_the_dln_to_gain_half_of_bns_drop_in_loss():
    record = _smoothness_record(2.0)
    assert smoothness.headlines(record)[-1]["shown?"] == "yes"      # every DLN ends at the same loss
    cfg = smoothness.SmoothnessConfig.from_record(record)
    for run in smoothness.runs(cfg):   # BN's DLN ends at 1.0, the standard and ℓp ones at 5.0
        if run.arch == "dln" and run.norm != "bn":
            record.metrics[f"{run.name}/loss"] = [5.0, 5.0]
    lp = smoothness.headlines(record)[-1]
    assert lp["shown?"] == "no" and "DLN final loss: standard 5.0, BN 1.0" in lp["ours"]


class _Killed(Exception):
    """What a run killed after its first checkpoint raises in these tests."""


@pytest.mark.parametrize("chapter_module, config", [(noise, noise.NoiseConfig),
                                                    (smoothness, smoothness.SmoothnessConfig)],
                         ids=["07", "08"])
def test_a_checkpoint_copied_from_another_seeds_run_is_refused(chapter_module, config):
    cfg = config.for_profile("smoke", dln_steps=30, checkpoint_every=10)
    chapter = chapter_module.CHAPTER
    mine = next(r for r in chapter_module.runs(cfg) if r.arch == "dln")
    other = S.Run(mine.arch, mine.norm, mine.lr, mine.seed + 1)

    def killed_at_25(c, ctx):
        def crash(*_):
            raise _Killed
        return {25: [crash]}

    with pytest.raises(_Killed):             # seed 1's run, killed after its step-20 checkpoint
        S.train_run(chapter, cfg, other, killed_at_25)
    theirs, path = (results.checkpoint_path(chapter, r.name, cfg) for r in (other, mine))
    path.write_bytes(theirs.read_bytes())    # ... copied over seed 0's checkpoint
    with pytest.raises(ValueError, match=f"checkpoint {path} belongs to another run.*"
                                         "delete it to start the run afresh"):
        S.train_run(chapter, cfg, mine, lambda c, ctx: {})
    out = S.train_run(chapter, cfg, other, lambda c, ctx: {})   # its own run resumes from it
    assert out["loss_step"][-1] == 30 and not theirs.exists()
