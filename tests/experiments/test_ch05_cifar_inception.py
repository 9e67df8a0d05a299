"""TinyInception, the ablation table's configs, training, resuming, divergence and the analysis."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import needs_cifar10

from bn_utils.training import augment, train
from bn_utils import data
from bn_utils.book import results
from bn_utils.experiments import ch05_cifar_inception as inc
from bn_utils.nn.tiny_inception import InceptionBlock, TinyInception


# ---------------------------------------------------------------------------------------------
# The network


def conv_params(c_in, c_out, k, bn):
    """Weights, plus a bias without BN or BN's gamma and beta with it."""
    return c_in * c_out * k * k + (2 * c_out if bn else c_out)


def expected_params(width, bn, final_bn=False):
    h = width // 2

    def block(c):
        return (conv_params(c, h, 1, bn)                                             # 1x1
                + conv_params(c, h, 1, bn) + conv_params(h, width, 3, bn)            # 1x1→3x3
                + conv_params(c, h, 1, bn) + conv_params(h, width, 3, bn)            # 1x1→3x3
                + conv_params(width, width, 3, bn)                                   # →3x3
                + conv_params(c, h, 1, bn))                                          # pool→1x1
    feats = 3 * width
    return (conv_params(3, width, 3, bn) + block(width) + block(feats)
            + (2 * feats if final_bn else 0) + feats * 10 + 10)


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize("width", [16, 8])
def test_parameter_count_matches_the_layer_by_layer_formula(width, bn):
    model = TinyInception(width=width, bn=bn, dropout=0.0 if bn else 0.4)
    assert sum(p.numel() for p in model.parameters()) == expected_params(width, bn)


def test_a_final_bn_before_the_classifier_adds_its_gamma_and_beta():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(TinyInception(width=16, final_bn=True)) == expected_params(16, True, True)


@pytest.mark.parametrize("five", ["5x5", "double3x3"])
def test_output_shapes_of_blocks_and_network(five):
    x = torch.randn(5, 3, 32, 32)
    model = TinyInception(width=16, five=five)
    assert model(x).shape == (5, 10)
    assert model.block1(model.pool1(model.stem(x))).shape == (5, 48, 16, 16)
    block = InceptionBlock(16, b1=8, b3_reduce=8, b3=16, b5_reduce=8, b5=16, pool_proj=8, five=five)
    assert block(torch.randn(2, 16, 7, 9)).shape == (2, 48, 7, 9)


def test_bn_sits_before_every_nonlinearity_and_convs_lose_their_bias():
    model = TinyInception(width=8, bn=True)
    seqs = [m for m in model.modules() if isinstance(m, torch.nn.Sequential)
            and isinstance(m[0], torch.nn.Conv2d)]
    assert len(seqs) == 15  # stem + 7 per block
    for s in seqs:
        assert s[0].bias is None and isinstance(s[1], torch.nn.BatchNorm2d)
        assert isinstance(s[2], torch.nn.ReLU)
    plain = TinyInception(width=8, bn=False, act="sigmoid", dropout=0.4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.Sigmoid) for m in plain.modules())
    assert isinstance(plain.dropout, torch.nn.Dropout) and plain.dropout.p == 0.4


def test_channels_last_input_gives_the_same_logits():
    torch.manual_seed(0)
    model = TinyInception(width=8).eval()
    x = torch.randn(4, 3, 32, 32)
    ref = model(x)
    cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, ref, rtol=1e-4, atol=1e-5)


def test_bad_widths_and_dropout_are_rejected():
    with pytest.raises(ValueError, match="width"):
        TinyInception(width=7)
    with pytest.raises(ValueError, match="dropout"):
        TinyInception(dropout=1.0)


# ---------------------------------------------------------------------------------------------
# The table's configuration


def test_the_full_table_has_the_papers_five_rows_and_their_settings():
    cfg = inc.AblationConfig.for_profile("full")
    assert set(inc.ABLATION_ROWS) <= set(cfg.rows)
    assert inc.ABLATION_ROWS == ("Inception", "BN-Baseline", "BN-x5", "BN-x30", "BN-x5-Sigmoid")
    runs = {row: cfg.run_config(row, 0) for row in inc.ABLATION_ROWS}
    assert {r: rc.lr for r, rc in runs.items()} == pytest.approx(
        {"Inception": 0.0015, "BN-Baseline": 0.0015, "BN-x5": 0.0075, "BN-x30": 0.045,
         "BN-x5-Sigmoid": 0.0075})
    assert [rc.bn for rc in runs.values()] == [False, True, True, True, True]
    # BN-Baseline is Inception + BN: it keeps Inception's dropout; the accelerated rows drop it
    assert [rc.dropout for rc in runs.values()] == [0.4, 0.4, 0, 0, 0]
    assert runs["BN-x5-Sigmoid"].activation == "sigmoid"
    assert all(runs[r].activation == "relu" for r in ("Inception", "BN-Baseline", "BN-x5", "BN-x30"))
    slow, fast = runs["BN-Baseline"], runs["BN-x5"]
    assert fast.weight_decay == pytest.approx(slow.weight_decay / 5)      # L2 reduced 5x
    assert fast.decay_epochs == pytest.approx(slow.decay_epochs / 6)      # lr decay 6x faster
    assert fast.jitter < slow.jitter                                       # fewer distortions
    # Inception and the accelerated BN rows train until their curves level off; the rest 30 epochs
    assert {r: rc.epochs for r, rc in runs.items()} == {
        "Inception": 100, "BN-Baseline": 30, "BN-x5": 60, "BN-x30": 60, "BN-x5-Sigmoid": 60}
    assert [cfg.run_config(row, 0).epochs for row in inc.SANITY_ROWS] == [30, 30]
    assert cfg.seeds == (0, 1, 2) and runs["BN-x30"].batch_size == 32


def test_bn_baseline_differs_from_inception_only_by_bn_and_its_budget_in_every_profile():
    for profile in ("smoke", "quick", "reference", "full"):
        cfg = inc.AblationConfig.for_profile(profile)
        base, bn = cfg.run_config("Inception", 0).to_dict(), cfg.run_config("BN-Baseline", 0).to_dict()
        assert {k for k in base if base[k] != bn[k]} <= {"row", "bn", "epochs"}, profile
        assert bn["dropout"] == 0.4


def test_each_sanity_row_is_its_bn_twins_recipe_without_bn_in_every_profile():
    for profile in ("smoke", "quick", "reference", "full"):
        cfg = inc.AblationConfig.for_profile(profile)
        assert inc.SANITY_TWINS == {"Inception-x30": "BN-x30", "Inception-x5-Sigmoid": "BN-x5-Sigmoid"}
        for plain, twin in inc.SANITY_TWINS.items():
            a, b = cfg.run_config(plain, 0).to_dict(), cfg.run_config(twin, 0).to_dict()
            assert {k for k in a if a[k] != b[k]} <= {"row", "bn", "epochs"}, (profile, plain)
            assert not a["bn"] and b["bn"]


def test_every_profile_builds_and_runs_are_distinct_records():
    for profile in ("smoke", "quick", "reference", "full"):
        cfg = inc.AblationConfig.for_profile(profile)
        names = [(rc.name, rc.digest()) for rc in cfg.runs()]
        assert len(set(names)) == len(names) == len(cfg.rows) * len(cfg.seeds)
    assert len(inc.rows_table(inc.AblationConfig.for_profile("full"))) == len(inc.ROWS)


def test_learning_rates_scale_linearly_with_the_batch():
    cfg = inc.AblationConfig.for_profile("full", batch_size=128)
    assert cfg.run_config("BN-x30", 0).lr == pytest.approx(0.045 * 4)


def test_nonsense_fails_before_any_work():
    with pytest.raises(ValueError, match="rows"):
        inc.AblationConfig.for_profile("quick", rows=("BN-x40",))
    with pytest.raises(ValueError, match="evals_per_epoch"):
        inc.AblationConfig.for_profile("smoke", evals_per_epoch=100)


def test_lr_schedule_is_a_staircase_of_the_decay_factor():
    rc = inc.AblationConfig.for_profile("full").run_config("BN-x5", 0)
    lr_at, spe = inc.lr_schedule(rc), rc.steps_per_epoch
    period = rc.decay_epochs * spe
    assert lr_at(0) == lr_at(int(period) - 1) == pytest.approx(rc.lr)
    assert lr_at(int(period) + 1) == pytest.approx(rc.lr * 0.96)
    assert lr_at(int(10 * period) + 1) == pytest.approx(rc.lr * 0.96 ** 10)


def test_weight_decay_skips_bn_parameters_and_biases():
    rc = inc.RunConfig(width=8, n_train=256, n_test=100, epochs=1)
    model = inc.build_model(rc)
    opt = inc.optimizer(model, rc)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == ("weight" in name and p.ndim > 1), name


# ---------------------------------------------------------------------------------------------
# Training


def small_run(**changes):
    fields = dict(row="BN-x30", width=8, n_train=256, n_test=100, epochs=2, evals_per_epoch=2,
                  profile="smoke")
    fields.update(changes)
    return inc.RunConfig(**fields)


@needs_cifar10
def test_a_few_steps_on_256_images_reduce_the_loss():
    rc = small_run(epochs=4, jitter=0.0)
    x, y, _, _ = inc.cifar_uint8(rc.n_train, rc.n_test, "cpu")
    model = inc.build_model(rc)
    xb = augment.normalise(x)

    def loss():
        with torch.no_grad():
            return F.cross_entropy(model(xb), y).item()

    before = loss()
    batches = augment.AugmentedBatches(data.batches(x, y, 32, seed=0), augment.Augment())
    train.fit(model, batches, steps=rc.steps, optimizer=inc.optimizer(model, rc), progress=False)
    after = loss()
    assert after < before - 0.1, f"loss went from {before:.3f} to {after:.3f}"


class Killed(Exception):
    """Stands for the process being killed right after a checkpoint was written."""


@needs_cifar10
def test_a_run_is_stored_and_a_killed_run_resumes_to_the_same_record(tmp_path, monkeypatch):
    rc = small_run(epochs=2)
    monkeypatch.setenv("BN_RESULTS_DIR", str(tmp_path / "uninterrupted"))
    whole = inc.run_one(rc)
    assert whole.path.name.startswith("BN-x30_s0__smoke__")
    assert whole["history"]["steps_done"] == rc.steps == 16
    assert whole["history"]["eval_step"] == [0, 4, 8, 12, 16]
    logits, labels = whole["test_logits"], whole["test_labels"]
    assert logits.dtype == np.float16 and logits.shape == (100, 10) and labels.shape == (100,)
    assert (logits.argmax(1) == labels).mean() == pytest.approx(whole["final_accuracy"], abs=0.011)
    assert not results.checkpoint_path(inc.CHAPTER, rc.name, rc).exists()

    monkeypatch.setenv("BN_RESULTS_DIR", str(tmp_path / "killed"))
    save = train.save_checkpoint

    def save_then_die(path, state):
        save(path, state)
        raise Killed

    monkeypatch.setattr(train, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        inc.run_one(rc)
    ckpt = results.checkpoint_path(inc.CHAPTER, rc.name, rc)
    assert ckpt.exists() and not list(ckpt.parent.parent.glob("*.json"))
    monkeypatch.setattr(train, "save_checkpoint", save)
    skipped = []
    skip = augment.AugmentedBatches.skip
    monkeypatch.setattr(augment.AugmentedBatches, "skip",
                        lambda self, n: (skipped.append(n), skip(self, n)))
    resumed = inc.run_one(rc)

    assert skipped == [rc.steps_per_epoch], "the second attempt did not start from the checkpoint"
    assert resumed.path.name == whole.path.name
    assert resumed.meta.get("loaded") is None and not ckpt.exists()
    a, b = whole["history"], resumed["history"]
    assert b["steps_done"] == a["steps_done"] == rc.steps
    assert b["eval_step"] == a["eval_step"]
    np.testing.assert_allclose(b["evals"]["accuracy"], a["evals"]["accuracy"], atol=1e-6)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    np.testing.assert_array_equal(resumed["test_logits"], whole["test_logits"])


@needs_cifar10
def test_a_diverged_run_is_recorded_tabled_and_plotted():
    import matplotlib.pyplot as plt

    cfg = inc.AblationConfig.for_profile("smoke", rows=("Inception", "Inception-x30"),
                                         lr_scale=300.0)
    record = inc.run(cfg)
    assert record.metrics["Inception-x30"]["diverged"] == [True]
    doc = json.loads(record.path.read_text())  # strict JSON: no NaN or inf slipped through
    assert doc["metrics"]["Inception-x30"]["history"][0]["diverged_at"] is not None
    summ = inc.summary(record)
    assert summ["Inception-x30"]["n_diverged"] == 1
    assert {r["row"]: r["diverged"] for r in inc.comparison(summ)}["Inception-x30"] == "1/1"
    fig = inc.plot(record)
    assert any("diverged" in t.get_text() for t in fig.legends[0].get_texts())
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Analysis on known curves


def fake_row(acc, spe=10, diverged=False):
    steps = [i * spe for i in range(len(acc))]
    hist = {"eval_step": steps, "evals": {"accuracy": acc}, "step": steps, "loss": [1.0] * len(acc),
            "diverged": diverged, "diverged_at": steps[-1] if diverged else None}
    return {"steps_per_epoch": spe, "history": [hist], "diverged": [diverged],
            "max_accuracy": [max(acc)]}


def test_steps_to_target_and_speedup_on_known_curves():
    metrics = {"Inception": fake_row([0.1, 0.2, 0.3, 0.5]),
               "BN-x5": fake_row([0.1, 0.5, 0.6, 0.6]),
               "BN-x5-Sigmoid": fake_row([0.1, 0.2, 0.2, 0.4])}
    record = results.Record("05", "ablation", {}, metrics)
    summ = inc.summary(record)
    assert summ["Inception"]["target"] == pytest.approx(0.5)
    assert summ["Inception"]["steps_to_target"] == 30 and summ["BN-x5"]["steps_to_target"] == 10
    assert summ["BN-x5"]["epochs_to_target"] == pytest.approx(1.0)
    assert summ["BN-x5"]["speedup"] == pytest.approx(3.0)
    assert summ["BN-x5-Sigmoid"]["steps_to_target"] is None
    assert summ["BN-x5-Sigmoid"]["speedup"] is None


def test_speedup_resolution_is_the_eval_interval_over_the_steps_to_target():
    metrics = {"Inception": fake_row([0.1, 0.2, 0.3, 0.5, 0.5]),     # reaches 0.5 at step 30
               "BN-x5": fake_row([0.1, 0.3, 0.6, 0.6, 0.6])}        # ... at step 20
    summ = inc.summary(results.Record("05", "ablation", {}, metrics))
    assert summ["BN-x5"]["speedup"] == pytest.approx(1.5)
    assert summ["BN-x5"]["speedup_resolution"] == pytest.approx(10 / 20 + 10 / 30)
    assert "± 83 %" in {r["row"]: r for r in inc.comparison(summ)}["BN-x5"]["speed-up (ours)"]


def test_levelling_tells_a_climbing_curve_from_a_flat_one():
    steps = np.arange(0, 100, 10)
    climbing = inc.levelling(steps, np.linspace(0.1, 0.6, 10))
    flat = inc.levelling(steps, [0.1, 0.3, 0.5, 0.55, 0.58, 0.6, 0.6, 0.601, 0.599, 0.602])
    assert not climbing["levelled"] and climbing["gain"] == pytest.approx(0.5 / 9 * 2)   # the last fifth: steps 80, 90
    assert flat["levelled"] and flat["gain"] == pytest.approx(0.001)
    summ = inc.summary(results.Record("05", "ablation", {}, {"Inception": fake_row(list(np.linspace(0.1, 0.6, 10)))}))
    assert summ["Inception"]["target_levelled"] is False


def test_each_seed_has_its_own_levelling_gain_beside_the_mean_curves():
    climbing, flat = list(np.linspace(0.1, 0.6, 10)), [0.1, 0.3, 0.5, 0.55, 0.58, 0.6, 0.6, 0.601, 0.599, 0.602]
    a, b = fake_row(climbing), fake_row(flat)
    row = {**a, "history": a["history"] + b["history"], "diverged": [False, False]}
    gains = inc.seed_levelling(row)
    assert gains == pytest.approx([0.5 / 9 * 2, 0.001])
    steps, mean = inc.mean_curve(row)
    assert inc.levelling(steps, mean)["gain"] < max(gains)         # the mean curve's own gain


def test_late_gains_text_says_which_rows_levelled_off_by_the_same_rule():
    climbing, flat = list(np.linspace(0.1, 0.6, 10)), [0.1, 0.3, 0.5, 0.55, 0.58, 0.6, 0.6, 0.601, 0.599, 0.602]
    record = results.Record("05", "ablation", {}, {"BN-x5": fake_row(climbing), "BN-x30": fake_row(flat)})
    gain = 100 * 0.5 / 9 * 2                                      # the last fifth of the climbing curve
    assert inc.late_gains_text(record, ["BN-x5"]) == (
        f"BN-x5 {gain:.1f} points: none had levelled off by the same rule, so each best accuracy is "
        "where its run stops, not a plateau")
    assert inc.late_gains_text(record, ["BN-x5", "BN-x30"]) == (
        f"BN-x5 {gain:.1f} and BN-x30 0.1 points: only BN-x30 had levelled off by the same rule")
    assert inc.late_gains_text(record, ["BN-x30"]).endswith(": all had levelled off by the same rule")
    assert inc.late_gains_text(record, ["BN-Baseline"]) == "not run"
    # cut after 4 epochs (step 40), the flat curve was still rising: 0.58 against 0.55 before
    assert inc.late_gains_text(record, ["BN-x30"], epochs=4) == (
        "BN-x30 3.0 points: none had levelled off by the same rule, so a run stopped there would "
        "end before its plateau")


def test_the_papers_speedups_come_from_its_figure_3_steps():
    paper = inc.paper_speedups()
    assert paper["BN-x5"] == pytest.approx(31.0 / 2.1) and paper["BN-x30"] == pytest.approx(31.0 / 2.7)
    assert paper["Inception"] == 1.0 and paper["BN-x5-Sigmoid"] is None


def test_dense_evaluations_fill_the_first_epochs_between_the_regular_ones():
    rc = small_run(n_train=320, epochs=3, evals_per_epoch=2, dense_evals_per_epoch=5, dense_epochs=1.5)
    assert rc.steps_per_epoch == 10
    assert inc.dense_eval_steps(rc) == [2, 4, 6, 8, 12, 14]      # 5 and 10, 15 are regular ones
    assert inc.dense_eval_steps(small_run(dense_evals_per_epoch=0)) == []
    row = fake_row([0.1, 0.3, 0.5])                              # regular: steps 0, 10, 20
    row["history"][0].update(measure_step=[5, 15], measures={"accuracy": [0.2, 0.45]})
    steps, acc = inc.curve(row)
    assert list(steps) == [0, 5, 10, 15, 20]
    np.testing.assert_allclose(acc[0], [0.1, 0.2, 0.3, 0.45, 0.5])
    assert inc.crossing_interval(steps, 15) == 5 and np.isnan(inc.crossing_interval(steps, None))


def test_mean_curve_leaves_out_diverged_seeds():
    row = fake_row([0.1, 0.3, 0.5])
    bad = fake_row([0.1, 0.2], diverged=True)
    row["history"].append(bad["history"][0])
    row["diverged"].append(True)
    steps, mean = inc.mean_curve(row)
    assert list(steps) == [0, 10, 20]
    np.testing.assert_allclose(mean, [0.1, 0.3, 0.5])


def test_rows_keep_table_order_when_loaded_from_sorted_json(tmp_path):
    cfg = inc.AblationConfig.for_profile("smoke", rows=("Inception", "BN-x5", "BN-Baseline"))
    metrics = {r: fake_row([0.1, 0.3]) for r in cfg.rows}
    results.save(inc.CHAPTER, "ablation", cfg, metrics)
    loaded = results.load(inc.CHAPTER, "ablation", cfg)
    assert list(loaded.metrics) == sorted(cfg.rows)          # what JSON gives back
    assert inc.ordered_rows(loaded) == ["Inception", "BN-Baseline", "BN-x5"]
    assert list(inc.summary(loaded)) == ["Inception", "BN-Baseline", "BN-x5"]


def test_no_speedup_is_computed_to_a_chance_level_target():
    # Inception diverged early: its best is chance level, which every row "reaches" at once
    metrics = {"Inception": fake_row([0.1, 0.11, 0.1], diverged=True),
               "BN-x5": fake_row([0.1, 0.5, 0.6])}
    summ = inc.summary(results.Record("05", "ablation", {}, metrics))
    assert summ["Inception"]["target_at_chance"]
    assert all(s["steps_to_target"] is None and s["speedup"] is None for s in summ.values())
    assert inc.reach_text(summ["Inception"]) == "diverged at step 20"
    assert inc.reach_text(summ["BN-x5"]).startswith("no target: the best accuracy of Inception")
    rows = {r["row"]: r for r in inc.comparison(summ)}
    assert rows["Inception"]["steps to target (ours)"] == "diverged at step 20"
    assert rows["BN-x5"]["speed-up (ours)"] == "—"


def test_a_row_whose_seeds_all_diverged_says_where():
    metrics = {"Inception": fake_row([0.1, 0.3, 0.5]), "BN-x30": fake_row([0.1, 0.2], diverged=True)}
    summ = inc.summary(results.Record("05", "ablation", {}, metrics))
    assert summ["BN-x30"]["diverged_at"] == 10 and summ["BN-x30"]["speedup"] is None
    assert inc.reach_text(summ["BN-x30"]) == "diverged at step 10"
    assert inc.reach_text(summ["Inception"]) == "20 steps (2.0 epochs)"


@needs_cifar10
def test_a_stopped_table_resumes_from_its_stored_runs_and_trains_only_the_rest(monkeypatch):
    """A sweep killed after its first (row, seed) record keeps that record: rerun, it trains only
    the runs that are missing (smoke profile, the reference profile's mechanism)."""
    cfg = inc.AblationConfig.for_profile("smoke", rows=("Inception", "BN-x30"))
    real, trained = inc.train_run, []

    def train_then_die(rc, **kwargs):
        if trained:
            raise Killed
        trained.append(rc.name)
        return real(rc, **kwargs)

    monkeypatch.setattr(inc.experiment, "train_run", train_then_die)
    with pytest.raises(Killed):
        inc.run(cfg)
    assert trained == ["Inception_s0"] and results.load(inc.CHAPTER, "ablation", cfg) is None

    def train_counted(rc, **kwargs):
        trained.append(rc.name)
        return real(rc, **kwargs)

    monkeypatch.setattr(inc.experiment, "train_run", train_counted)
    record = inc.run(cfg)
    assert trained == ["Inception_s0", "BN-x30_s0"]            # Inception was not trained again
    assert set(record.metrics) == {"Inception", "BN-x30"}


def _row_summary(best, speedups=(None,), resolution=None, diverged_at=None, early=None, last_step=10_000):
    """A row of ``inc.summary``: ``best`` and ``speedups`` one value per seed."""
    best = [best] * len(speedups) if np.isscalar(best) else list(best)
    return {"max_accuracy": float(np.mean(best)), "max_accuracy_std": float(np.std(best)),
            "n_seeds": len(best), "max_accuracy_seeds": best, "speedup_seeds": list(speedups),
            "speedup": None, "speedup_resolution": resolution, "diverged_at": diverged_at,
            "diverged_seeds": [diverged_at is not None] * len(best), "n_diverged": 0,
            "early_accuracy_seeds": list(early or best), "last_step": last_step,
            "steps_to_target": 1000, "target_at_chance": False}


def test_headlines_decide_on_the_seeds_spread_beyond_the_resolution_and_mark_missing_rows():
    summ = {"Inception": _row_summary([0.57, 0.58, 0.56], (1.0, 1.0, 1.0), 0.1),
            # 1.25x with a 30 % resolution: not beyond it, nor clearly below it
            "BN-Baseline": _row_summary([0.58, 0.59, 0.57], (1.25, 1.2, 1.3), 0.3),
            "BN-x5-Sigmoid": _row_summary([0.5, 0.52, 0.51], (0.8, 0.85, 0.75), 0.1),
            "BN-x5": _row_summary([0.66, 0.67, 0.65], (5.0, 5.5, 4.5), 0.2, early=[0.4, 0.41, 0.39]),
            "BN-x30": _row_summary([0.60, 0.61, 0.62], (None, None, None), early=[0.3, 0.31, 0.29]),
            "Inception-x30": _row_summary([0.10] * 3, (None,) * 3, diverged_at=300)}
    by_claim = {h["claim"]: h for h in inc.claim_rows(summ)}
    verdict = {c.split(" ")[0] if "reaches" in c else c: h["verdict"] for c, h in by_claim.items()}
    assert verdict["BN-Baseline"] == "inside the noise" and verdict["BN-x5"] == "yes"
    assert verdict["BN-x30"] == "no"                  # no seed reached the target in a long enough run
    assert by_claim["BN-x5-Sigmoid never reaches Inception's best accuracy (its seeds' mean best below Inception's)"]["verdict"] == "yes"
    assert by_claim["BN-x30's best accuracy is above BN-x5's"]["verdict"] == "no"
    assert by_claim["BN-x30's best accuracy is above Inception's"]["verdict"] == "yes"
    # slower at first (yes) but not higher at the end (no): the claim fails
    assert by_claim["BN-x30 trains more slowly than BN-x5 at first but ends higher"]["verdict"] == "no"
    sigmoid = [h for c, h in by_claim.items() if "sigmoid network trains" in c][0]
    assert sigmoid["verdict"] == "not run" and sigmoid["ours"] == "—"   # no Inception-x5-Sigmoid
    fails = [h for c, h in by_claim.items() if "recipe fails" in c][0]
    assert fails["verdict"] == "yes" and fails["ours"] == "diverged"
    assert all(h["kind"] == "paper" for h in by_claim.values())


def test_headlines_on_one_seed_decide_nothing_and_a_short_run_is_not_a_failure():
    summ = {"Inception": _row_summary(0.57, (1.0,), 0.1),
            "BN-Baseline": _row_summary(0.55, (None,), last_step=500),   # ended before step 1000
            "BN-x5": _row_summary(0.66, (5.0,), 0.2)}
    by_claim = {h["claim"].split(" ")[0]: h["verdict"] for h in inc.claim_rows(summ)}
    assert by_claim["BN-x5"] == "1 seed: not decided"
    assert by_claim["BN-Baseline"].startswith("not decided: its run ends before")


def test_a_comparison_with_a_row_that_did_not_learn_is_not_comparable():
    summ = {"Inception": _row_summary([0.11, 0.12, 0.1], (1.0,) * 3, 0.1),
            "BN-x5": _row_summary([0.6, 0.61, 0.62], (5.0,) * 3, 0.2),
            "BN-x30": _row_summary([0.7, 0.71, 0.72], (6.0,) * 3, 0.2)}
    by_claim = {h["claim"]: h["verdict"] for h in inc.claim_rows(summ)}
    assert by_claim["BN-x30's best accuracy is above Inception's"] == "not comparable"
    assert by_claim["BN-x30's best accuracy is above BN-x5's"] == "yes"


def test_stored_runs_reads_the_stored_runs_of_a_row_and_never_trains(monkeypatch):
    cfg = inc.AblationConfig.for_profile("smoke")
    monkeypatch.setattr(inc.experiment, "train_run", lambda *a, **k: pytest.fail("must not train"))
    best = lambda row: {s: r["max_accuracy"] for s, r in inc.stored_runs(cfg, row).items()}  # noqa: E731
    assert best("BN-x30") == {}
    for seed, acc, diverged in ((0, 0.5, False), (2, 0.7, False), (3, 0.1, True)):
        rc = cfg.run_config("BN-x30", seed)
        results.save(inc.CHAPTER, rc.name, rc, {"max_accuracy": acc, "diverged": diverged})
    assert best("BN-x30") == {0: 0.5, 2: 0.7}    # a diverged seed is left out
    assert best("BN-x5") == {}


def test_seeds_against_target_gives_each_stored_seed_its_own_speedup():
    metrics = {"Inception": fake_row([0.1, 0.2, 0.3, 0.5]),        # reaches 0.5 at step 30
               "BN-x30": fake_row([0.1, 0.5, 0.6, 0.6])}
    summ = inc.summary(results.Record("05", "ablation", {}, metrics))
    seeds = {0: fake_row([0.1, 0.5, 0.6, 0.6])["history"][0],      # step 10: 3x
             1: fake_row([0.1, 0.2, 0.55, 0.7])["history"][0],     # step 20: 1.5x
             2: fake_row([0.1, 0.2, 0.3, 0.4])["history"][0]}      # never
    out = inc.seeds_against_target(seeds, summ)
    assert [out[s]["steps_to_target"] for s in (0, 1, 2)] == [10, 20, None]
    assert out[0]["speedup"] == pytest.approx(3.0) and out[1]["speedup"] == pytest.approx(1.5)
    assert out[2]["speedup"] is None and out[1]["max_accuracy"] == pytest.approx(0.7)


def test_at_equal_steps_compares_best_accuracies_up_to_the_shorter_runs_end():
    metrics = {"Inception": fake_row([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),   # 50 steps
               "BN-Baseline": fake_row([0.1, 0.35, 0.45])}              # 20 steps, then stops
    record = results.Record("05", "ablation", {}, metrics)
    out = inc.at_equal_steps(record, "BN-Baseline")
    assert out == {"step": 20, "row": pytest.approx(0.45), "base": pytest.approx(0.3)}
    assert inc.at_equal_steps(record, "BN-x5") is None


def test_orderings_rank_the_rows_by_speedup_and_by_accuracy_beside_the_papers():
    metrics = {"Inception": fake_row([0.1, 0.2, 0.3, 0.5]), "BN-x5": fake_row([0.1, 0.2, 0.5, 0.55]),
               "BN-x30": fake_row([0.1, 0.5, 0.6, 0.7]), "BN-Baseline": fake_row([0.1, 0.2, 0.3, 0.4])}
    order = inc.orderings(inc.summary(results.Record("05", "ablation", {}, metrics)))
    assert order["speed_ours"] == "BN-x30 (3.0x), BN-x5 (1.5x); not reached: BN-Baseline"   # said, not dropped
    assert order["speed_paper"].startswith("BN-x5 (14.8x), BN-x30 (11.5x)")
    assert order["acc_ours"].startswith("BN-x30 (70.0 %), BN-x5 (55.0 %), Inception (50.0 %)")
    assert order["acc_paper"].startswith("BN-x30 (74.8 %)")
    # the student's: its Inception's 99 epochs over each row's epochs to the same accuracy
    assert order["speed_student"] == "BN-x30 (24.8x), BN-x5 (14.1x), BN-Baseline (7.6x)"
    assert inc.student_speedups()["BN-x5-Sigmoid"] is None


def test_seeds_rows_end_with_the_mean_and_std_over_the_seeds():
    per_seed = {0: {"max_accuracy": 0.6, "steps_to_target": 10, "speedup": 3.0},
                1: {"max_accuracy": 0.7, "steps_to_target": 20, "speedup": 1.5},
                2: {"max_accuracy": 0.5, "steps_to_target": None, "speedup": None}}
    rows = inc.seeds_rows(per_seed)
    assert [r["speed-up"] for r in rows] == ["3.0x", "1.5x", "never", "2.2 ± 1.1x"]
    assert rows[-1]["best acc. %"] == "60.0 ± 10.0" and rows[2]["steps to target"] == "never"
    assert len(inc.seeds_rows({0: per_seed[0]})) == 1


def test_seed_spread_gives_mean_sample_std_and_range_or_none():
    per_seed = {0: {"max_accuracy": 0.6, "speedup": 3.0}, 1: {"max_accuracy": 0.7, "speedup": 1.5},
                2: {"max_accuracy": 0.5, "speedup": None}}
    spread = inc.seed_spread(per_seed)
    assert spread["n"] == 3 and spread["acc"] == pytest.approx((60.0, 10.0, 50.0, 70.0))
    assert spread["speedup"] == pytest.approx((np.mean([3.0, 1.5]), np.std([3.0, 1.5], ddof=1), 1.5, 3.0))
    assert inc.seed_spread({0: per_seed[0], 2: per_seed[2]})["speedup"] is None   # one seed reached it
    assert inc.seed_spread({0: per_seed[0]}) is None


def test_reach_sentence_says_how_a_row_reached_the_target_or_why_not():
    summ = {"BN-x5": {**_row_summary(0.66, (5.0,), 0.2), "steps_to_target": 200,
                      "epochs_to_target": 0.5, "speedup": 5.0, "speedup_resolution": 0.2},
            "BN-x30": {**_row_summary(0.6, (None,)), "steps_to_target": None}}
    assert inc.reach_sentence(summ, "BN-Baseline", 30) == "was not run"
    assert inc.reach_sentence(summ, "BN-x30", 30) == "did not reach it within its 30 epochs (best: 60.0 %)"
    text = inc.reach_sentence(summ, "BN-x5", 30)
    assert text.startswith("reached it after 200 steps (0.5 epochs): 5.0x fewer steps than Inception, ± 20 %")
    assert f"(the paper: {inc.paper_speedups()['BN-x5']:.1f}x)" in text


def test_target_sensitivity_moves_the_target_below_a_flat_peak():
    # Inception creeps from 0.49 to its peak 0.50 over steps 20-50: 98 % of the peak (0.49) comes 3x sooner
    metrics = {"Inception": fake_row([0.1, 0.3, 0.49, 0.495, 0.498, 0.5]),
               "BN-x30": fake_row([0.1, 0.49, 0.5, 0.6, 0.6, 0.6])}
    record = results.Record("05", "ablation", {}, metrics)
    assert inc.summary(record)["BN-x30"]["speedup"] == pytest.approx(50 / 20)
    sens = inc.target_sensitivity(record, fractions=(0.98,))
    assert sens[0.98]["target"] == pytest.approx(0.49)
    assert sens[0.98]["inception_steps"] == 20
    assert sens[0.98]["speedups"]["BN-x30"] == pytest.approx(20 / 10)
    assert inc.target_sensitivity(results.Record("05", "ablation", {}, {"BN-x30": metrics["BN-x30"]})) == {}
