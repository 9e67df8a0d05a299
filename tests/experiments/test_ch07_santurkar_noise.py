"""Chapter 7, ``bn_utils.experiments.ch07_santurkar_noise``: its config fails early and names its
runs apart, its headlines (noisy BN's drift and accuracy, the noise control, ICS) apply their
stated rules over seeds and say when a network did not learn, its ICS cases and summary, and how
its tables, claims and figures write and draw their numbers. The made-up chapter 7 records come
from ``santurkar_helpers.py``."""

import numpy as np
import pytest

from bn_utils.book import claims
from bn_utils.experiments import ch07_santurkar_noise as noise, santurkar
from santurkar_helpers import NOISE_ACC, THREE, _noise_record


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
