"""Chapter 01's claim is decided on three seeds: the further seeds' record, how it joins the
figure's record, the verdict with one seed (not decided) or a record of another config, and the
seeds' means the takeaways quote."""

import dataclasses

import numpy as np
import pytest

from bn_utils.book import claims
from bn_utils.experiments import ch01_covariate_shift as shift
from conftest import needs_mnist


def _cfg(**kw):
    return shift.ShiftConfig.for_profile("smoke", steps=20, eval_every=10, n_train=200,
                                         probe_size=50, **kw)


@needs_mnist
def test_the_further_seeds_train_other_networks_and_join_the_figures_record():
    cfg = _cfg()
    rec, seeds = shift.run(cfg), shift.run_seeds(cfg)
    per_seed = shift.seed_summaries(rec, seeds)
    assert sorted(per_seed) == [0, 1, 2]
    assert per_seed[0] == shift.summary(rec)
    ranges = [per_seed[s]["no_bn"]["mean_range"] for s in per_seed]
    assert len(set(ranges)) == 3               # three trainings, not one copied
    row, = shift.claim_rows(rec, seeds)
    plain = [per_seed[s]["no_bn"]["mean_range"] for s in per_seed]
    bn = [per_seed[s]["bn"]["mean_range"] for s in per_seed]
    d = claims.paired(np.subtract(plain, bn))
    assert row["verdict"] == d.verdict and row["spread"].endswith("3 seeds")
    assert shift.run_seeds(cfg).meta.get("loaded")    # stored: not trained again


@needs_mnist
def test_one_seed_is_not_decided_and_another_configs_seeds_are_left_out():
    cfg = _cfg()
    rec = shift.run(cfg)
    assert shift.claim_rows(rec)[0]["verdict"] == claims.not_decided(1)
    other = shift.run_seeds(dataclasses.replace(cfg, lr=0.1))
    assert shift.seed_summaries(rec, other) == {0: shift.summary(rec)}
    assert shift.claim_rows(rec, other)[0]["verdict"] == claims.not_decided(1)


def test_no_record_is_not_run():
    assert shift.claim_rows(None)[0]["verdict"] == claims.NOT_RUN


def test_seed_means_average_each_networks_measures_over_the_seeds():
    per_seed = {s: {n: {"mean_range": r + (0.5 if n == "no_bn" else 0.0), "std_range": 2 * r,
                        "final_accuracy": 0.9} for n in shift.NETS}
                for s, r in ((0, 0.1), (1, 0.2), (2, 0.3))}
    means = shift.seed_means(per_seed)
    assert means["bn"]["mean_range"] == pytest.approx(0.2)
    assert means["no_bn"]["mean_range"] == pytest.approx(0.7)
    assert means["bn"]["std_range"] == pytest.approx(0.4) and means["no_bn"]["final_accuracy"] == pytest.approx(0.9)
    # their difference is the mean of the seeds' differences, the claim's spread
    assert means["no_bn"]["mean_range"] - means["bn"]["mean_range"] == pytest.approx(0.5)
