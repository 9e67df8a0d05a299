"""Chapter 8, ``bn_utils.experiments.ch08_santurkar_smoothness``: its config, runs and step
sizes, the landscape summary and ratios, β (λ) at step 0 and at a common loss, the flat start and
the edge of stability, the ℓp claim and verdicts, the DLN's loss levels, the extra seeds, its
headlines over one and three seeds, and its figures' legends and bands. The made-up chapter 8
records come from ``santurkar_helpers.py``."""

import numpy as np
import pytest

from bn_utils.book import claims, results
from bn_utils import data
from bn_utils.experiments import ch08_santurkar_smoothness as smoothness, santurkar
from santurkar_helpers import JITTER, THREE, _smoothness_record


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


def test_the_beta_takeaway_names_the_part_that_fails_first_and_each_parts_verdict():
    # BN's λ larger at step 0 (a decided no), at the common loss smaller on average but spread
    # over the seeds (inside the noise); at LR 0.5 the standard network did not learn
    record = _smoothness_record(2.0)
    later = {0: -4.0, 1: 0.0, 2: 2.0}   # BN's λ at step 4: the loss-level medians 8, 10 and 11
    for run in smoothness.runs(smoothness.SmoothnessConfig.from_record(record)):
        if run.arch == "vgg" and run.norm == "bn":
            record.metrics[f"{run.name}/ls_beta"] = [20.0, later[run.seed]]
        if run.arch == "vgg" and run.norm == "none" and run.lr == 0.5:
            record.metrics[f"{run.name}/train_batch_accuracy"] = [np.nan, 0.1, 0.099]
    parts = smoothness.beta_parts(record)
    assert [claims.verdict_of(parts[lr]["step 0"]) for lr in (0.1, 0.5)] == [claims.NO, claims.NO]
    assert claims.verdict_of(parts[0.1]["common loss"]) == claims.NOISE
    assert parts[0.5]["common loss"] == claims.NOT_COMPARABLE
    assert smoothness.claim_rows(record)[3]["verdict"] == claims.NO   # the book's row, same parts
    assert smoothness.beta_parts_text(record) == (
        "At step 0 the test fails: BN's λ was larger, beyond the seeds' noise, at learning rates 0.1 "
        "and 0.5, and that part alone refutes it. At the loss both reached the difference sits inside "
        "the seeds' noise (BN's λ smaller on average) at learning rate 0.1, and it is left out at "
        "learning rate 0.5 (a network had not learned half-way)")


def test_the_beta_takeaway_when_both_parts_hold_fail_or_are_not_decided():
    assert smoothness.beta_parts_text(_smoothness_record(2.0)) == (
        "At step 0 BN's λ was smaller, beyond the seeds' noise, at learning rates 0.1 and 0.5. At the "
        "loss both reached BN's λ was smaller, beyond the seeds' noise, at learning rates 0.1 and 0.5")
    both = smoothness.beta_parts_text(_smoothness_record(20.0))
    assert both.count("the test fails") == 2 and both.endswith(", and either part alone refutes it")
    assert smoothness.beta_parts_text(_smoothness_record(2.0, seeds=(0,))).startswith(
        "At step 0 the verdict is 1 seed: not decided at learning rates 0.1 and 0.5")
