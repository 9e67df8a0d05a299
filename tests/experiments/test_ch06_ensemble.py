"""The ensemble: averaging softmax on known logits, members shared with chapter 05."""

import dataclasses

import numpy as np
import pytest
from conftest import needs_cifar10

from bn_utils.experiments import ch06_ensemble as ens
from bn_utils.experiments import ch05_cifar_inception as inc


LABELS = np.array([0, 1, 2, 0])
# Three members on four examples of three classes. Each is right on two examples: A on 0 and 1,
# B on 1 and 2, C on 0 and 2; on example 3 (label 0) A and C put class 0 second.
A = np.log(np.array([[.8, .1, .1], [.1, .8, .1], [.5, .4, .1], [.35, .05, .6]]))
B = np.log(np.array([[.1, .8, .1], [.1, .8, .1], [.1, .1, .8], [.1, .8, .1]]))
C = np.log(np.array([[.8, .1, .1], [.5, .4, .1], [.1, .1, .8], [.35, .6, .05]]))


def test_softmax_of_log_probabilities_gives_them_back():
    np.testing.assert_allclose(ens.softmax(A + 3.0), np.exp(A), rtol=1e-12)


def test_members_and_ensemble_accuracy_on_known_logits():
    assert [ens.topk_accuracy(z, LABELS) for z in (A, B, C)] == [0.5, 0.5, 0.5]
    probs = ens.ensemble_probabilities([A, B, C])
    # averages: ex0 (.567,.333,.1) → 0 ✓; ex1 (.2,.7,.1) → 1 ✓; ex2 (.233,.2,.567) → 2 ✓;
    # ex3 (.267,.483,.25) → 1 ✗: the ensemble gets 3 of 4 where every member got 2.
    np.testing.assert_allclose(probs[3], [0.8 / 3, 1.45 / 3, 0.75 / 3])
    assert ens.topk_accuracy(probs, LABELS, 1) == 0.75
    assert ens.topk_accuracy(probs, LABELS, 2) == 1.0
    assert ens.topk_accuracy(probs, LABELS, 3) == 1.0


def test_top1_agrees_with_the_books_accuracy_rule_and_a_nan_row_is_wrong():
    import torch
    from bn_utils.training import train

    z = A.copy()
    z[0, 1] = np.nan   # argmax alone would pick the NaN's column, or the right class
    rule = train.correct(torch.as_tensor(z), torch.as_tensor(LABELS)).numpy()
    np.testing.assert_array_equal(ens.topk_right(z, LABELS, 1), rule)
    assert not ens.topk_right(z, LABELS, 3)[0] and ens.topk_accuracy(z, LABELS, 3) == 0.75


def test_accuracy_by_ensemble_size_averages_over_all_subsets():
    by_size = ens.subset_accuracies([A, B, C], LABELS)
    assert by_size[0] == pytest.approx(0.5)
    pairs = [ens.topk_accuracy(ens.ensemble_probabilities(p), LABELS)
             for p in ([A, B], [A, C], [B, C])]
    assert by_size[1] == pytest.approx(np.mean(pairs))
    assert by_size[2] == 0.75


def test_plain_seed_members_are_chapter_05s_bn_x30_runs_in_every_profile():
    for profile in ("smoke", "quick", "full"):
        cfg = ens.EnsembleConfig.for_profile(profile)
        ablation = inc.AblationConfig.for_profile(profile)
        assert cfg.base() == ablation, profile
        for name in ("seed-0", "seed-1", "seed-2"):
            rc, chapter = cfg.member(name)
            assert chapter == inc.CHAPTER
            assert rc == ablation.run_config("BN-x30", ens.VARIANTS[name]["seed"])
        rc, chapter = cfg.member("init-x2-final-bn")
        base = ablation.run_config("BN-x30", ens.VARIANTS["init-x2-final-bn"]["seed"])
        assert chapter == ens.CHAPTER and rc.final_bn and rc.init_gain == 2.0
        # the variant is BN-x30's run (learning rate and all) with only these changed
        assert dataclasses.replace(rc, row=base.row, final_bn=False, init_gain=1.0) == base
    assert ens.EnsembleConfig.for_profile("full").members == tuple(ens.VARIANTS)


def test_a_member_listed_twice_is_rejected():
    with pytest.raises(ValueError, match="twice"):
        ens.EnsembleConfig.for_profile("smoke", members=("seed-0", "seed-0"))


@needs_cifar10
def test_the_ensemble_reuses_chapter_05_runs_and_trains_only_the_rest(monkeypatch):
    import matplotlib.pyplot as plt

    cfg = ens.EnsembleConfig.for_profile("smoke", members=("seed-0", "dropout-5pct"))
    inc.run_one(cfg.base().run_config("BN-x30", 0))          # what chapter 05 stored
    trained = []
    train_run = inc.train_run
    monkeypatch.setattr(inc.experiment, "train_run", lambda rc, **kw: (trained.append(rc.name),
                                                            train_run(rc, **kw))[1])
    record = ens.run(cfg)
    assert trained == ["BN-x30-dropout-5pct_s3"]
    members = record["members"]
    assert members["seed-0"]["reused_from_chapter_05"]
    assert not members["dropout-5pct"]["reused_from_chapter_05"]
    top1 = [m["top1"] for m in members.values()]
    assert record["ensemble"]["top1"] == pytest.approx(record["by_size"][-1])
    assert record["gain_top1"] == pytest.approx(record["ensemble"]["top1"] - max(top1))
    assert record["ensemble"]["top5"] >= record["ensemble"]["top1"]
    assert len(ens.table(record)) == 2 + 3
    assert record["gain_top1_se"] >= 0
    assert {m["seconds"] > 0 for m in members.values()} == {True}
    assert ens.training_minutes(record)["this_chapter"] == pytest.approx(
        members["dropout-5pct"]["seconds"] / 60)
    plt.close(ens.plot(record))


def test_members_keep_the_configs_order_when_loaded_from_sorted_json():
    from bn_utils.book import results

    cfg = ens.EnsembleConfig.for_profile("smoke", members=("seed-1", "dropout-5pct", "seed-0"))
    member = {"top1": 0.5, "top5": 0.9, "diverged": False, "reused_from_chapter_05": True}
    out = {"members": {n: member for n in cfg.members}, "ensemble": {"top1": 0.6, "top5": 0.9},
           "n_used": 3}
    results.save(ens.CHAPTER, "ensemble", cfg, out)
    loaded = results.load(ens.CHAPTER, "ensemble", cfg)
    assert ens.member_names(loaded) == list(cfg.members)
    assert [r["network"] for r in ens.table(loaded)[:3]] == [ens.LABELS[n] for n in cfg.members]


def test_training_cost_counts_every_members_steps_against_one_inception():
    cfg = ens.EnsembleConfig.for_profile("full")
    cost = ens.training_cost(cfg)
    spe = 50_000 // 32
    assert cost["member_steps"] == 6 * 60 * spe and cost["inception_steps"] == 100 * spe
    assert cost["ratio"] == pytest.approx(3.6)          # six 60-epoch members: 3.6 Inceptions


def test_paired_gain_counts_only_the_images_where_the_two_disagree():
    # 100 images: both right on 60, both wrong on 30, only the first right on 8, only the second on 2
    first = np.array([1] * 60 + [0] * 30 + [1] * 8 + [0] * 2, dtype=bool)
    second = np.array([1] * 60 + [0] * 30 + [0] * 8 + [1] * 2, dtype=bool)
    gain, se = ens.paired_gain(first, second)
    assert gain == pytest.approx(0.06)
    d = np.r_[np.zeros(90), np.ones(8), -np.ones(2)]
    assert se == pytest.approx(d.std(ddof=1) / 10)
    assert ens.paired_gain(first, first) == (0.0, 0.0)   # identical classifiers: no noise


def test_pairing_the_test_images_lowers_the_standard_error_when_the_two_agree_mostly():
    first = np.array([1] * 60 + [0] * 30 + [1] * 8 + [0] * 2, dtype=bool)
    second = np.array([1] * 60 + [0] * 30 + [0] * 8 + [1] * 2, dtype=bool)
    _, paired = ens.paired_gain(first, second)
    unpaired = ens.unpaired_se(first.mean(), second.mean(), len(first))
    assert unpaired == pytest.approx(np.sqrt((0.68 * 0.32 + 0.62 * 0.38) / 100))
    assert paired < unpaired
    with pytest.raises(ValueError, match="must lie in"):
        ens.unpaired_se(68.0, 0.62, 100)   # percentages, not shares


@pytest.mark.parametrize("gain, se, verdict", [(0.02, 0.005, "yes"), (0.0101, 0.005, "yes"),
                                               (0.01, 0.005, "inside the noise"),
                                               (0.005, 0.005, "inside the noise"),
                                               (-0.01, 0.002, "no"), (0.02, None, "not run")])
def test_headlines_decide_the_claim_on_two_paired_standard_errors(gain, se, verdict):
    from bn_utils.book import results

    cfg = ens.EnsembleConfig.for_profile("smoke")
    member = {"top1": 0.60, "top5": 0.9, "diverged": False, "reused_from_chapter_05": True}
    out = {"members": {n: member for n in cfg.members}, "n_used": len(cfg.members),
           "ensemble": {"top1": 0.60 + gain, "top5": 0.95}, "best_member": cfg.members[0],
           "gain_top1": gain, "n_test": 200}
    if se is not None:   # records made before the standard error was stored lack it
        out["gain_top1_se"] = se
    record = results.Record(ens.CHAPTER, "ensemble", cfg.to_dict(), out)
    (row,) = ens.claim_rows(record)          # one claim, the paper's and the student's: one row
    assert row["source"] == "Ioffe & Szegedy 2015, Table 3; student reproduction"
    assert row["verdict"] == verdict
    if se is not None:
        assert f"{100 * gain:+.2f} ± {100 * se:.2f} points" in row["spread"]
    rows = [row]
    assert "4.9 % vs 5.82 %" in rows[0]["their number"]


def _member_record(logits, labels, diverged=False, seconds=60.0):
    from bn_utils.book import results

    return results.Record(inc.CHAPTER, "run", {}, {
        "diverged": diverged, "max_accuracy": 0.5, "history": {"seconds": seconds}},
        {"test_logits": np.asarray(logits, np.float16), "test_labels": np.asarray(labels)},
        {"seconds": seconds / 2, "device": "cpu"})


def test_the_gains_standard_error_pairs_the_ensemble_with_its_best_member(monkeypatch):
    cfg = ens.EnsembleConfig.for_profile("smoke", members=("seed-1", "seed-0", "dropout-5pct"))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    good = np.eye(3)[labels] * 2 + rng.normal(size=(200, 3))      # the best member
    fair = np.eye(3)[labels] * 1 + rng.normal(size=(200, 3))
    stored = {"seed-1": _member_record(np.full((200, 3), np.nan), labels, diverged=True, seconds=30),
              "seed-0": _member_record(fair, labels, seconds=60), "dropout-5pct": _member_record(good, labels, seconds=240)}
    by_name = {cfg.member(n)[0].name: stored[n] for n in cfg.members}
    monkeypatch.setattr(ens.inception, "run_one", lambda rc, chapter: by_name[rc.name])
    out = ens.run_members(cfg)
    assert out["best_member"] == "dropout-5pct" and out["n_used"] == 2
    probs = ens.ensemble_probabilities([fair.astype(np.float16).astype(np.float32),
                                        good.astype(np.float16).astype(np.float32)])
    best = good.astype(np.float16).astype(np.float32)
    gain, se = ens.paired_gain(probs.argmax(1) == labels, best.argmax(1) == labels)
    assert out["gain_top1"] == pytest.approx(gain) and out["gain_top1_se"] == pytest.approx(se)
    # training minutes: history's seconds (every attempt), split by who trains the member:
    # seed 0 is chapter 05's own run; seed 1 and the variant are this chapter's
    record = results_record(cfg, out)
    minutes = ens.training_minutes(record)
    assert minutes["chapter_05"] == pytest.approx(1.0) and minutes["this_chapter"] == pytest.approx(4.5)


def results_record(cfg, out):
    from bn_utils.book import results

    return results.Record(ens.CHAPTER, "ensemble", cfg.to_dict(), out)


def test_only_chapter_05s_own_seeds_count_as_trained_by_it():
    from bn_utils.book import results

    # quick: chapter 05's table trains BN-x30 seed 0 only; seeds 1 and 2 are trained by this
    # chapter and stored in chapter 05's folder, so they are "reused" on loading but not its runs
    cfg = ens.EnsembleConfig.for_profile("quick", members=("seed-0", "seed-1", "dropout-5pct"))
    assert cfg.base().seeds == (0,)
    members = {"seed-0": (True, 0), "seed-1": (True, 1), "dropout-5pct": (False, 0)}
    out = {"members": {n: {"top1": 0.5, "top5": 0.9, "diverged": False, "reused_from_chapter_05": r,
                           "seed": s, "seconds": 60.0 * (i + 1)} for i, (n, (r, s)) in enumerate(members.items())},
           "ensemble": {"top1": 0.6, "top5": 0.9}, "n_used": 3}
    record = results.Record(ens.CHAPTER, "ensemble", cfg.to_dict(), out)
    assert [ens.trained_by_chapter_05(record, n) for n in members] == [True, False, False]
    assert [r["source"] for r in ens.table(record)[:3]] == ["chapter 5's run", "trained here", "trained here"]
    minutes = ens.training_minutes(record)
    assert (minutes["chapter_05"], minutes["this_chapter"]) == (1.0, 5.0)


def test_the_ensemble_of_the_reference_members_stored_so_far_never_trains(monkeypatch):
    from bn_utils.book import results

    monkeypatch.setattr(inc.experiment, "train_run", lambda *a, **k: pytest.fail("must not train"))
    cfg = ens.EnsembleConfig.for_profile("reference")
    assert ens.stored_ensemble(cfg) is None                      # nothing stored: no ensemble
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 50)
    for name in ("seed-0", "seed-1"):
        rc, chapter = cfg.member(name)
        logits = rng.normal(size=(50, 10)) + 3 * np.eye(10)[labels]    # mostly right
        results.save(chapter, rc.name, rc, {
            "diverged": False, "max_accuracy": 0.5, "history": {"seconds": 1.0},
            "test_logits": logits.astype(np.float16), "test_labels": labels.astype(np.int64)})
    record = ens.stored_ensemble(cfg)
    assert record.profile == "reference" and record["n_used"] == 2
    assert record.meta["runs"] == f"2 of {len(cfg.members)}" and "stored so far" in record.caption()
    assert set(ens.member_names(record)) == {"seed-0", "seed-1"}
    assert ens.run(ens.EnsembleConfig.for_profile("quick")).meta["runs"] == record.meta["runs"]
