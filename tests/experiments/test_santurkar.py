"""Chapters 7-8 experiment code: measurements never change the trajectory, hooks' records
survive a resume, configs fail early, and record names with dots stay distinct."""

import itertools
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_utils.book import claims, results
from bn_utils import data, runtime
from bn_utils.training import train
from bn_utils.nn import models
from conftest import needs_cifar10
from bn_utils.experiments import (
    ch07_santurkar_noise as noise, santurkar, ch08_santurkar_smoothness as smoothness)


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


def test_configs_fail_early_and_runs_are_named_without_collisions():
    with pytest.raises(ValueError, match="watch_layers"):
        noise.NoiseConfig.for_profile("smoke", watch_layers=(14,))
    with pytest.raises(ValueError, match="train_probe"):
        noise.NoiseConfig.for_profile("smoke", train_probe=600)
    with pytest.raises(ValueError, match="bad run"):
        santurkar.Run("resnet", "bn", 0.1, 0)
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


def test_beta_comparison_reads_beta_at_step_0_across_lrs_and_at_a_common_loss():
    cfg = smoothness.SmoothnessConfig.for_profile("smoke", lr=0.1, large_lr=0.5)
    metrics = {}
    down = [2.3, 2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.9, 0.8, 0.8]
    for norm, lr, loss, beta in (
            # the standard network's lowest smoothed loss is the level; BN reaches it earlier
            ("none", 0.1, [2.3, 2.2, 2.1, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.5], [10.0] + [20.0] * 9),
            # one spike where BN first reaches the level: the window's median ignores it
            ("bn", 0.1, down, [5.0, 18.0, 18.0, 18.0, 18.0, 143.7, 18.0, 18.0, 18.0, 18.0]),
            ("none", 0.5, [2.3] * 10, [10.0] + [4.0] * 9),
            ("bn", 0.5, down, [5.0] + [3.0] * 9)):
        name = santurkar.group("vgg", norm, lr) + "_s0"
        metrics[f"{name}/ls_loss"], metrics[f"{name}/ls_beta"] = loss, beta
        learns = norm == "bn" or lr == 0.1
        metrics[f"{name}/eval_step"], metrics[f"{name}/train_batch_accuracy"] = [0, 4, 8], [np.nan, 0.5 if learns else 0.1, 0.6]
    record = results.Record("08", "smoothness", cfg.to_dict(), metrics)
    rows = smoothness.beta_comparison(record, "vgg")
    assert rows[("none", 0.1)]["beta_init"] == 10.0 and rows[("bn", 0.1)]["beta_init"] == 5.0
    assert rows[("bn", 0.5)]["beta"] == 3.0 and rows[("bn", 0.5)]["beta_lr_over_2"] == pytest.approx(0.75)
    # the level at LR 0.1: the standard network's lowest running median of 5 (1.6); BN's running
    # median first reaches it at its 4th measurement (median of 2.0 .. 1.2 = 1.6), where the
    # window of 5 holds the spike once: its median is 18
    assert rows[("none", 0.1)]["loss_level"] == pytest.approx(1.6)
    assert rows[("bn", 0.1)]["beta_at_level"] == 18.0 and rows[("none", 0.1)]["beta_at_level"] == 20.0
    assert rows[("bn", 0.1)]["beta_at_level_seeds"] == {0: 18.0}
    assert smoothness.beta_at_loss({"ls_loss": down, "ls_beta": list(range(10))}, 0.0) != 0.0  # never: NaN
    assert not rows[("none", 0.5)]["learned"] and rows[("bn", 0.5)]["learned"]
    assert len(smoothness.beta_table(record).rows) == 4


def _landscape_record(per_seed_beta: dict) -> results.Record:
    """A chapter-08 record of DLN runs whose measured λ is ``per_seed_beta[norm]`` (one list of
    values over training per seed); the loss range and gradient change follow λ."""
    cfg = smoothness.SmoothnessConfig.for_profile("smoke")
    metrics = {}
    for norm, seeds in per_seed_beta.items():
        for seed, beta in enumerate(seeds):
            name = santurkar.group("dln", norm, cfg.dln_lr) + f"_s{seed}"
            beta = np.asarray(beta, float)
            metrics[f"{name}/ls_beta"] = beta
            metrics[f"{name}/ls_losses"] = np.stack([np.zeros_like(beta), beta], 1)   # range = λ
            metrics[f"{name}/ls_grad_diffs"] = np.stack([beta, beta / 2], 1)           # max = λ
            metrics[f"{name}/loss"] = [10.0, 5.0]
    return results.Record("08", "smoothness", cfg.to_dict(), metrics)


def test_the_landscape_table_shows_what_the_claims_decide_on_the_mean_of_per_seed_medians():
    # one seed of the standard network is far rougher: the pooled median would hide it
    record = _landscape_record({"none": [[1, 2, 3], [2, 2, 2], [100, 200, 300]],
                                "bn": [[1, 1, 1], [1, 1, 1], [1, 2, 3]], "l1": [[1.0]], "l2": [[1.0]],
                                "linf": [[1.0]]})
    summary = smoothness.smoothness_summary(record, "dln")
    assert summary["none"]["beta"] == pytest.approx((2 + 2 + 200) / 3)
    assert summary["none"]["loss_range"] == summary["none"]["grad_change"] == summary["none"]["beta"]
    assert summary["bn"]["beta"] == pytest.approx(4 / 3) and summary["none"]["beta_max"] == 300
    ratios, text = smoothness.landscape_ratios(summary)
    assert ratios["λ"] == pytest.approx(204 / 4) and text == "all three above 1, the paper's direction"


def test_landscape_ratios_call_a_ratio_near_1_about_equal_not_above():
    near = {"none": {"loss_range": 2.0, "grad_change": 1.05, "beta": 0.5},
            "bn": {"loss_range": 1.0, "grad_change": 1.0, "beta": 1.0}}
    ratios, text = smoothness.landscape_ratios(near)
    assert ratios["largest gradient change"] == pytest.approx(1.05)
    assert text == "one above 1 (the paper's direction), one within 10% of 1 and one below 1"
    same = {k: {"loss_range": 1.0, "grad_change": 1.0, "beta": 1.0} for k in ("none", "bn")}
    assert smoothness.landscape_ratios(same)[1] == "three within 10% of 1"


def test_verdicts_text_names_each_measure_unless_all_agree():
    assert smoothness.verdicts_text({"a": "yes", "b": "yes", "c": "yes"}) == "yes on all three measures"
    assert smoothness.verdicts_text({"a": "yes", "b": "no"}) == "a: yes, b: no"


JITTER = (0.0, 0.01, -0.01)   # per seed: what differs between seeds of one network


def _noise_record(acc: dict, ics_bn: tuple = (0.5, 0.5), drop: str = "", ics_bn_dln: tuple | None = None,
                  seeds: tuple = (0,), stuck: tuple = ()):
    """A chapter 7 record from made-up runs, one per seed (each seed's numbers shifted by
    ``JITTER``): final training accuracy (noise on) per network at the first LR, reached by
    half-way (a network in ``stuck``, e.g. ``("vgg", "none", 0.01)``, is still at chance there),
    distributions that move twice as much with noise (with noise, the units' variance is 4, else
    1), and BN's (rel, cos) ICS (in the DLN: ``ics_bn_dln``, default the same) against the
    standard network's (0.4, 0.6); ``drop``: a network left out."""
    cfg = noise.NoiseConfig.for_profile("smoke", seeds=seeds)
    metrics = {}
    for run in noise.runs(cfg):
        if run.norm == drop:
            continue
        name, m, j = run.name, {}, JITTER[run.seed]
        late = (run.arch, run.norm, run.lr) in stuck
        if run.arch == "vgg":
            a = acc.get(run.norm, 0.5) + j if run.lr == cfg.vgg_lrs[0] else 0.5 + j
            m.update(eval_step=[0, 4, 8], train_batch_accuracy=[np.nan, 0.1 if late else a, a],
                     train_accuracy=[0.1, a, a], test_accuracy=[0.1, a - 0.05, a - 0.05])
        else:
            m.update(loss_step=[0, 10, 20], loss=[100.0, 90.0 if late else 40.0, 30.0])
        if run.arch == "vgg" and run.lr == cfg.vgg_lrs[0]:
            m["measure_step"] = [0, 4, 8]
            step = 2.0 if "nois" in run.norm else 1.0
            for k in cfg.watch_layers:
                m[f"act_mean_L{k}"] = [[0.0] * 3, [step * (1 + j)] * 3, [2 * step * (1 + j)] * 3]
                m[f"act_var_L{k}"] = [[step ** 2] * 3] * 3
        layers = cfg.ics_layers if run.arch == "vgg" else cfg.dln_ics_layers
        bn_ics = ics_bn if run.arch == "vgg" or ics_bn_dln is None else ics_bn_dln
        rel, cos = bn_ics if run.norm == "bn" else (0.4, 0.6)
        for k in layers:
            m[f"ics_l2_L{k}"], m[f"ics_cos_L{k}"], m[f"grad_norm_L{k}"] = [rel + j], [cos + j], [1.0]
        metrics.update({f"{name}/{key}": v for key, v in m.items()})
    return results.Record(noise.CHAPTER, "noise", cfg.to_dict(), metrics)


THREE = (0, 1, 2)


def _verdicts(rows) -> dict:
    return {r["claim"].split(" (")[0]: r["verdict"] for r in rows}


def test_noise_headlines_apply_their_stated_rules_over_three_seeds():
    record = _noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.56, "noise": 0.2}, seeds=THREE)
    shift = noise.shift_summary(record)
    deep = record.config["watch_layers"][-1]
    assert shift["noisy_bn"][f"spread_L{deep}"][0] == 2.0 and shift["none"][f"spread_L{deep}"][0] == 1.0
    rows = noise.claim_rows(record)
    assert all(set(r) == {"claim", "source", "their number", "ours", "spread", "verdict", "kind"} for r in rows)
    v = _verdicts(rows)
    # twice the absolute drift, but with twice the spread: the same relative drift
    assert v["noisy BN's layer inputs move more than the standard network's"] == claims.YES
    relative = "noisy BN's layer inputs move more than the standard network's relative to each layer's own spread"
    assert v[relative] == claims.NOISE                      # equal in every seed: nothing decides
    nearly = next(r for r in rows if r["claim"].startswith("noisy BN trains nearly as well"))
    assert nearly["verdict"] == claims.YES and "keeps 92.0 %" in nearly["ours"]   # 0.46 / 0.50, per seed
    weaker = noise.claim_rows(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.54, "noise": 0.2}, seeds=THREE))
    assert _verdicts(weaker)["noisy BN trains nearly as well as BN"] == claims.NO   # 0.44 / 0.50 < 0.9
    assert v["the same noise costs a standard network more than a BN network"] == claims.YES
    assert v["BN improves test accuracy"] == claims.YES
    assert v["the same noise stops a standard network from training"] == claims.NO   # 0.2 > 0.15
    stopped = noise.claim_rows(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.56, "noise": 0.11}, seeds=THREE))
    assert _verdicts(stopped)["the same noise stops a standard network from training"] == claims.YES
    assert [r["kind"] for r in rows] == ["paper", "book", "paper", "paper", "paper", "book", "paper", "paper"]
    # BN's ICS larger (0.5 > 0.4) and its cosine smaller: decidedly not reduced anywhere
    ics = rows[-1]
    assert "ICS" in ics["claim"] and ics["verdict"] == claims.YES and "3 seeds" in ics["spread"]
    reduced = noise.claim_rows(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.5, "noise": 0.2},
                                            ics_bn=(0.3, 0.7), seeds=THREE))
    assert reduced[-1]["verdict"] == claims.NO and "VGG LR 0.1 layer 3" in reduced[-1]["ours"]
    missing = noise.claim_rows(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.5}, drop="noise", seeds=THREE))
    assert [r["verdict"] for r in missing].count(claims.NOT_RUN) == 2   # both rows need the noisy network


def test_noise_headlines_on_one_seed_are_not_decided():
    rows = noise.claim_rows(_noise_record({"none": 0.5, "bn": 0.6, "noisy_bn": 0.56, "noise": 0.2}))
    assert {r["verdict"] for r in rows} == {"1 seed: not decided"}
    assert all("1 seed" in r["spread"] for r in rows)


def test_ics_cases_need_both_networks_to_have_learned_by_half_way():
    acc = {"none": 0.5, "bn": 0.6, "noisy_bn": 0.5, "noise": 0.2}
    # chapter 7's reference: the standard VGG at LR 0.01 still at chance half-way through
    record = _noise_record(acc, ics_bn=(0.3, 0.7), ics_bn_dln=(0.3, 0.5), seeds=THREE,
                           stuck=(("vgg", "none", 0.01), ("dln", "none", 1e-7)))
    cases = {r["case"]: r for r in noise.ics_cases(record)}
    assert len(cases) == 8
    assert {c for c, r in cases.items() if not r["comparable"]} == {
        "VGG LR 0.01 layer 3", "VGG LR 0.01 layer 6", "DLN LR 1e-07 layer 9", "DLN LR 1e-07 layer 17"}
    assert all(r["reduced"] == claims.NOT_COMPARABLE for r in cases.values() if not r["comparable"])
    # VGG: smaller relative change and larger cosine (reduced); DLN: smaller change, smaller cosine
    assert cases["VGG LR 0.1 layer 3"]["reduced"] == claims.YES
    assert cases["DLN LR 1e-06 layer 9"]["reduced"] == claims.NO
    row = noise.claim_rows(record)[-1]
    assert row["verdict"] == claims.NO and "Not comparable" in row["ours"] and "VGG LR 0.01 layer 3" in row["ours"]
    # nothing comparable: the claim itself is not comparable
    stuck = tuple((a, "none", lr) for a, lrs in (("vgg", (0.1, 0.01)), ("dln", (1e-6, 1e-7))) for lr in lrs)
    nothing = noise.claim_rows(_noise_record(acc, seeds=THREE, stuck=stuck))[-1]
    assert nothing["verdict"] == claims.NOT_COMPARABLE


def test_worse_text_names_each_case_once_with_the_measures_it_was_worse_on():
    def case(name, l2, cos, comparable=True):
        d = {v: claims.decide(m, 0.01, 3) for v, m in (("no", -1.0), ("noise", 0.0))}
        return {"case": name, "comparable": comparable, "l2": d[l2], "cos": d[cos],
                "reduced": claims.all_of([d[l2], d[cos]]) if comparable else claims.NOT_COMPARABLE}
    cases = [case("A", "no", "noise"), case("B", "no", "no"), case("C", "noise", "no"),
             case("D", "noise", "noise"), case("E", "no", "no", comparable=False)]
    assert noise.worse_text(cases) == "in 3 cases: on ‖G − G′‖ alone in A, on both measures in B, on the cosine alone in C"
    assert noise.worse_text(cases[:1] + cases[3:]) == "in 1 case: on ‖G − G′‖ alone in A"
    assert noise.worse_text(cases[3:]) == "in no case"


def test_the_learned_rule_is_written_with_the_constants_learned_uses():
    text = santurkar.learned_rule()
    assert "above 20 % (twice chance; VGG)" in text and "at most 50 % of the initial loss (DLN)" in text
    assert noise.learned_rule is smoothness.learned_rule is santurkar.learned_rule   # one text, both pages


def test_noise_networks_are_the_four_vggs_at_the_first_rate_that_the_record_holds():
    record = _noise_record(NOISE_ACC, drop="noise", seeds=THREE)
    nets = noise.noise_networks(record)
    assert list(nets) == ["none", "bn", "noisy_bn"]
    group, members = nets["bn"]
    assert group == "vgg_bn_lr0.1" and len(members) == 3


def test_ics_is_decided_on_the_papers_absolute_change_not_the_relative_one():
    # BN's ‖G − G′‖ larger (0.5 against 0.4) but its gradients ten times larger: relatively smaller
    acc = {"none": 0.5, "bn": 0.6, "noisy_bn": 0.5, "noise": 0.2}
    record = _noise_record(acc, ics_bn=(0.5, 0.7), seeds=THREE)
    for key in [k for k in record.metrics if "/grad_norm_L" in k and "_bn_" in k.split("/")[0]]:
        record.metrics[key] = [10.0]
    case = next(r for r in noise.ics_cases(record) if r["case"].startswith("VGG LR 0.1"))
    assert case["l2"].verdict == claims.NO and case["rel"].verdict == claims.YES
    assert case["cos"].verdict == claims.YES and case["reduced"] == claims.NO
    row = noise.claim_rows(record)[-1]
    assert "‖G − G′‖ -0.1" in row["spread"] and "/‖G‖" not in row["spread"]
    assert "BN's ‖G − G′‖ decidedly larger in 8 of 8" in row["ours"]


def test_shares_kept_above_chance_are_not_comparable_when_the_clean_network_did_not_learn():
    # the standard network at chance: no gain for its noisy copy to keep, so no verdict either way
    rows = noise.claim_rows(_noise_record({"none": 0.1, "bn": 0.6, "noisy_bn": 0.58, "noise": 0.3}, seeds=THREE))
    control = next(r for r in rows if r["claim"].startswith("the same noise costs"))
    assert control["verdict"] == claims.NOT_COMPARABLE and "did not learn" in control["ours"]
    drift = next(r for r in rows if r["claim"].startswith("noisy BN's layer inputs move more"))
    assert drift["verdict"] == claims.NOT_COMPARABLE         # the standard network's drift at chance
    better = next(r for r in rows if r["claim"].startswith("noisy BN trains better"))
    assert better["verdict"] == claims.YES                    # an accuracy claim: its outcome stands
    at_chance = noise.claim_rows(_noise_record({"none": 0.1, "bn": 0.11, "noisy_bn": 0.12, "noise": 0.1},
                                              seeds=THREE))
    assert all(r["verdict"] == claims.NOT_COMPARABLE for r in at_chance[:7])   # nothing learned


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


def _smoothness_record(bn_beta: float, drop_lp: bool = False, dln_bn_beta: float | None = None,
                       acc: dict | None = None, seeds: tuple = THREE):
    """A chapter 8 record from made-up runs, one per seed (numbers shifted by ``JITTER``): BN's β
    (and loss range, gradient change) is ``bn_beta`` (in the DLN ``dln_bn_beta``, default the
    same) against the standard network's 10; the ℓp nets train best (``acc``: final training
    accuracy per network, reached by half-way)."""
    cfg = smoothness.SmoothnessConfig.for_profile("smoke", lr=0.1, large_lr=0.5, seeds=seeds)
    acc = acc or {"none": 0.3, "bn": 0.6, "l1": 0.5, "l2": 0.5, "linf": 0.5}
    metrics = {}
    for run in smoothness.runs(cfg):
        if drop_lp and run.norm in smoothness.LP_NETS:
            continue
        j = JITTER[run.seed]
        normed = dln_bn_beta if run.arch == "dln" and dln_bn_beta is not None else bn_beta
        b = (normed if run.norm != "none" else 10.0) * (1 + j)
        a = acc[run.norm] + j
        m = {"ls_losses": [[1.0, 1.0 + b]] * 2, "ls_grad_diffs": [[0.0, b]] * 2, "ls_beta": [b, b],
             "ls_grad_norm": [1.0, 1.0], "measure_step": [0, 4],
             "ls_loss": [2.3, 1.0], "eval_step": [0, 4, 8], "train_batch_accuracy": [np.nan, a, a],
             "train_accuracy": [0.1, a, a], "test_accuracy": [0.1, 0.2, 0.2],
             "loss_step": [0, 10, 20], "loss": [50.0, 5.0, {"none": 3.0, "bn": 1.0}.get(run.norm, 1.5) + j]}
        metrics.update({f"{run.name}/{key}": v for key, v in m.items()})
    return results.Record(smoothness.CHAPTER, "smoothness", cfg.to_dict(), metrics)


def test_smoothness_headlines_need_the_claim_in_both_networks():
    rows = smoothness.claim_rows(_smoothness_record(2.0))
    assert all(set(r) == {"claim", "source", "their number", "ours", "spread", "verdict", "kind"} for r in rows)
    assert [r["verdict"] for r in rows] == [claims.YES] * 6
    assert [r["kind"] for r in rows] == ["paper", "paper", "paper", "book", "paper", "paper"]
    rough = smoothness.claim_rows(_smoothness_record(20.0))
    assert [r["verdict"] for r in rough] == [claims.NO] * 4 + [claims.YES] * 2
    assert "VGG: standard 10, BN 20" in rough[2]["ours"]
    assert smoothness.claim_rows(_smoothness_record(2.0, drop_lp=True))[-1]["verdict"] == claims.NOT_RUN
    assert len(smoothness.claims_table(_smoothness_record(2.0)).rows) == 6
    # smoother in the VGG, rougher in the DLN: the claims about both networks are refuted by the DLN
    mixed = smoothness.claim_rows(_smoothness_record(2.0, dln_bn_beta=20.0))
    assert [r["verdict"] for r in mixed[:3]] == [claims.NO] * 3
    # nobody learns: the landscape comparisons are not comparable, and BN "tolerating" the larger
    # rate at chance accuracy is a no
    chance = {"none": 0.09, "bn": 0.12, "l1": 0.12, "l2": 0.12, "linf": 0.12}
    at_chance = smoothness.claim_rows(_smoothness_record(2.0, acc=chance))
    assert [r["verdict"] for r in at_chance[:3]] == [claims.NOT_COMPARABLE] * 3
    assert [r["verdict"] for r in at_chance[4:]] == [claims.NO, claims.NO]


def test_smoothness_headlines_on_one_seed_are_not_decided():
    rows = smoothness.claim_rows(_smoothness_record(2.0, seeds=(0,)))
    assert {r["verdict"] for r in rows} == {"1 seed: not decided"}


def test_the_beta_test_leaves_out_a_rate_where_the_standard_network_did_not_learn():
    # chapter 8's reference at LR 0.5: the standard VGG never learned, so β at the loss both
    # "reached" compares a trained network with one at its start; step 0 still compares
    acc = {"none": 0.3, "bn": 0.6, "l1": 0.5, "l2": 0.5, "linf": 0.5}
    record = _smoothness_record(2.0, acc=acc)
    for seed in THREE:
        record.metrics[f"vgg_none_lr0.5_s{seed}/train_batch_accuracy"] = [np.nan, 0.1, 0.099]
    row = smoothness.claim_rows(record)[3]
    assert "Not comparable: LR 0.5 at the common loss" in row["ours"] and row["verdict"] == claims.YES
    assert "LR 0.5: at step 0" in row["ours"]


def test_the_beta_test_says_when_the_standard_network_is_on_its_flat_start_at_step_0():
    record = _smoothness_record(20.0)   # BN's λ larger: the step-0 part says no
    assert "flat start" not in smoothness.claim_rows(record)[3]["ours"]   # equal gradients: not flat
    for run in smoothness.runs(smoothness.SmoothnessConfig.from_record(record)):
        if run.arch == "vgg" and run.norm == "none":   # its gradient a twentieth of BN's at step 0
            record.metrics[f"{run.name}/ls_grad_norm"] = [0.05, 1.0]
            record.metrics[f"{run.name}/ls_beta"] = [10.0, 30.0]   # and its λ above BN's from step 4
    flat = smoothness.flat_start(record, 0.1)
    assert flat["grad_none"] == pytest.approx(0.05) and flat["grad_bn"] == 1.0 and flat["reached"] == 4
    assert smoothness.on_flat_start(flat)
    row = smoothness.claim_rows(record)[3]
    assert row["verdict"] == claims.NO and "At step 0 the standard network was still on its flat start " \
        "(gradient norm 0.05 against BN's 1)" in row["ours"]
    note = smoothness.analysis.flat_start_note(flat)
    assert "its λ first reached BN's at step 4" in note and "vanishing gradient" in note
    assert smoothness.analysis.flat_start_note({**flat, "grad_none": 0.5}) == ""


def test_lp_verdicts_decide_the_vgg_and_the_dln_halves_apart():
    record = _smoothness_record(2.0)
    assert smoothness.lp_verdicts(record) == {"VGG": claims.YES, "DLN": claims.YES}
    cfg = smoothness.SmoothnessConfig.from_record(record)
    for run in smoothness.runs(cfg):   # the ℓp DLNs end at the standard network's loss
        if run.arch == "dln" and run.norm in smoothness.LP_NETS:
            record.metrics[f"{run.name}/loss"] = [50.0, 5.0, 3.0 + JITTER[run.seed]]
    assert smoothness.lp_verdicts(record) == {"VGG": claims.YES, "DLN": claims.NO}
    assert smoothness.claim_rows(record)[-1]["verdict"] == claims.NO


def test_smoothness_extra_seeds_cover_every_network_of_the_reference_profile():
    cfg = smoothness.SmoothnessConfig.for_profile("reference")
    extra = smoothness.extra_runs(cfg)
    assert len(extra) == 2 * len(smoothness.runs(cfg))
    assert {c.seeds for c, _ in extra} == {(1,), (2,)} and all(r.seed == c.seeds[0] for c, r in extra)


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


def test_the_large_rate_note_says_whether_the_standard_network_diverged_learned_or_not():
    big = lambda mean, diverged: {("none", 0.5): (mean, 0.0, diverged)}  # noqa: E731
    assert smoothness.large_lr_note(big(0.10, True), 0.5).startswith("diverged")
    assert smoothness.large_lr_note(big(data.CHANCE, False), 0.5).startswith("did not learn")
    assert smoothness.large_lr_note(big(0.9, False), 0.5) == "learned (final training accuracy 0.900)"
    assert smoothness.large_lr_note({}, 0.5) == "was not run at that rate in this record"

def test_the_lp_claim_needs_the_dln_to_gain_half_of_bns_drop_in_loss():
    record = _smoothness_record(2.0)
    assert smoothness.claim_rows(record)[-1]["verdict"] == claims.YES   # ℓp: 1.5, half of BN's drop 3 → 2
    cfg = smoothness.SmoothnessConfig.from_record(record)
    for run in smoothness.runs(cfg):   # BN's DLN ends at 1.0, the standard and ℓp ones at 5.0
        if run.arch == "dln" and run.norm != "bn":
            record.metrics[f"{run.name}/loss"] = [50.0, 5.0, 5.0 + JITTER[run.seed]]
    lp = smoothness.claim_rows(record)[-1]
    assert lp["verdict"] == claims.NO and "DLN final loss: standard 5, BN 1" in lp["ours"]


def test_the_dln_loss_levels_group_final_losses_within_one_percent_and_are_said_only_when_shared():
    record = _smoothness_record(2.0)
    cfg = smoothness.SmoothnessConfig.from_record(record)
    dln = [run for run in smoothness.runs(cfg) if run.arch == "dln"]
    for i, run in enumerate(dln):   # two plateaus, 100 and 400, each met within 0.5 %
        record.metrics[f"{run.name}/loss"] = [900.0, (100.0 if i % 2 else 400.0) * (1 + 0.005 * (i % 3 == 0))]
    levels = smoothness.analysis.final_loss_levels(record)
    assert len(levels) == 2 and 100 <= levels[0] <= 100.5 and 400 <= levels[1] <= 402
    assert f"the {len(dln)} runs' final losses fall on only 2 levels" in smoothness.loss_levels_note(record)
    for i, run in enumerate(dln):   # every run on its own level: nothing to say
        record.metrics[f"{run.name}/loss"] = [900.0, 100.0 * 2 ** i]
    assert smoothness.loss_levels_note(record) == ""


# ---------------------------------------------------------------------------------------------
# Verdicts asked to decide with less than they need: fewer seeds than a spread needs say "1 seed:
# not decided"; a comparison of a network that did not learn is not comparable

STUCK = tuple((a, "none", lr) for a, lrs in (("vgg", (0.1, 0.01)), ("dln", (1e-6, 1e-7))) for lr in lrs)
CHANCE_ACC = {"none": 0.09, "bn": 0.12, "l1": 0.12, "l2": 0.12, "linf": 0.12}
NOISE_ACC = {"none": 0.5, "bn": 0.6, "noisy_bn": 0.56, "noise": 0.2}
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
# How chapters 7 and 8 write their numbers and draw their bands

def test_fixed_sig_keeps_three_significant_digits_so_one_column_reads_alike():
    values = (1.0, 0.613, 0.0338, 2e6, 2.03e6, 14_900, 0.17, 1.35e-6)
    assert [santurkar.fixed_sig(v) for v in values] == \
        ["1.00", "0.613", "0.0338", "2.00e+06", "2.03e+06", "14,900", "0.170", "1.35e-06"]
    assert santurkar.fixed_sig(0.1, sign=True) == "+0.100" and santurkar.fixed_sig(0.0) == "0"
    assert santurkar.fmt_pm(0.00184, 0.0000642, 3, significant=True) == "0.00184 ± 6.42e-05"


def test_chapter_7s_tables_write_drifts_and_ics_with_three_significant_digits():
    record = _noise_record(NOISE_ACC, seeds=THREE)
    # the spread is the seeds' sample std (ddof=1), trailing zeros kept
    assert noise.shift_table(record).text_rows()[2][2:] == ["2.00 ± 0.0200", "1.00 ± 0.0100", "2.00 ± 0"]
    ics = noise.ics_table(record, "vgg")
    assert ics.text_rows()[:2] == [["0.1", "3", "standard", "0.400", "0.400", "0.600", "0%"],
                                   ["0.1", "3", "BN", "0.500", "0.500", "0.500", "0%"]]


def test_chapter_7s_claims_say_as_trained_in_percent_and_spell_out_their_measures():
    rows = noise.claim_rows(_noise_record(NOISE_ACC, seeds=THREE))
    nearly, better = (next(r for r in rows if r["claim"].startswith(c))
                      for c in ("noisy BN trains nearly as well", "noisy BN trains better"))
    assert nearly["ours"].startswith("training accuracy as trained 56.0 % vs 60.0 %")
    # the measure in the claim (noise on), and beside it the networks training leaves, noise off
    assert better["claim"].endswith("(training accuracy as trained, noise on)")
    assert better["ours"] == ("training accuracy as trained 56.0 % vs 50.0 %; "
                              "test accuracy (evaluation mode, noise off) 51.0 % vs 45.0 %")
    assert all("noise on" not in r["ours"] for r in rows)
    cost = next(r for r in rows if r["claim"].startswith("the same noise costs"))
    assert cost["ours"].endswith("(standard + noise) vs 92.0 % (noisy BN)")   # each share's own network
    assert "‖G − G′‖ " in rows[-1]["spread"] and "rel " not in rows[-1]["spread"]   # the paper's


def test_chapter_7s_bands_are_minimum_to_maximum_so_a_cosine_stays_within_one():
    import matplotlib
    matplotlib.use("Agg")
    record = _noise_record(NOISE_ACC, seeds=THREE)
    cfg = noise.NoiseConfig.from_record(record)
    for run in noise.runs(cfg):   # cosines that a mean ± std band would carry past 1
        if run.arch == "vgg":
            for k in cfg.ics_layers:
                record.metrics[f"{run.name}/ics_cos_L{k}"] = [1.0 if run.seed else 0.2]
                record.metrics[f"{run.name}/measure_step"] = [0]
    fig = noise.plot_ics(record, "vgg")
    tops = [p.get_paths()[0].vertices[:, 1].max() for ax in fig.axes for p in ax.collections]
    assert tops and max(tops) <= 1.0 + 1e-9
    assert "band: their minimum to maximum" in fig.bn_note and "± std" not in fig.bn_note


def test_seeds_shown_says_which_learning_rate_has_fewer_seeds():
    record = _noise_record(NOISE_ACC, seeds=THREE)
    runs = noise.unpack(record)
    for name in [n for n in runs if "lr0.01" in n and not n.endswith("_s0")]:
        del runs[name]   # the reference record: the VGGs at LR 0.01 have seed 0 only
    groups = {lr: [santurkar.group("vgg", norm, lr) for norm in ("none", "bn")] for lr in (0.1, 0.01)}
    assert santurkar.seeds_shown(runs, groups) == \
        "3 seeds per network at learning rate 0.1, 1 seed per network at learning rate 0.01"
    assert santurkar.seeds_shown(runs, {0.1: groups[0.1]}) == "3 seeds per network"


def test_chapter_8s_landscape_legend_counts_the_seeds_its_bands_average():
    import matplotlib
    matplotlib.use("Agg")
    record = _smoothness_record(2.0)
    for key in [k for k in record.metrics if k.endswith("/ls_beta")]:
        record.metrics[key.replace("/ls_beta", "/measure_step")] = [0, 4]
    fig = smoothness.plot_landscape(record, "vgg")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["standard (n=3)", "BN (n=3)"]


def test_chapter_8s_dln_loss_panel_bands_only_the_standard_and_bn_networks():
    import matplotlib
    matplotlib.use("Agg")
    record = _smoothness_record(2.0)
    fig = smoothness.plot_training(record)
    dln, norms = fig.axes[2], record.config["dln_norms"]
    assert len(norms) > 2 and len(dln.lines) == len(norms) and len(dln.collections) == 2   # two ± std bands
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ℓ1 norm (n=3)" in labels and "BN (n=3)" in labels   # a line alone still counts its seeds
    assert "in the DLN for the standard and BN networks only" in fig.bn_note


def test_the_edge_of_stability_is_given_as_the_reason_once_per_page():
    at_edge = {"none": {"beta": 19.0}, "bn": {"beta": 15.0}}
    texts = smoothness.edge_readings({"vgg": (at_edge, 0.1), "dln": (at_edge, 0.1)})
    why = "as the edge of stability would predict"
    assert why not in texts["vgg"] and why in texts["dln"]
    assert "both within a factor of two of 1" in texts["vgg"]
    far = {"none": {"beta": 100.0}, "bn": {"beta": 1.0}}
    assert why in smoothness.edge_readings({"vgg": (at_edge, 0.1), "dln": (far, 0.1)})["vgg"]
