"""Chapter 04 (MNIST, Ioffe & Szegedy §4.1): the config, the networks, the stacked trainer (equal
to separate torch runs), the probes, the batch-size-1 pitfall, and short runs that learn."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bn_utils import data
from bn_utils.book import results
from bn_utils.experiments import ch04_mnist as mnist
from conftest import (Planted, assert_stack_equals_nets_in_eval_mode, max_state_error, needs_mnist,
                      small_nets)

SMALL = mnist.MnistConfig(hidden=(16, 12, 8), probe_units=4, n_train=300, val_size=10,
                          batch_size=7)


def train_separately(net, x, y, seed, steps, lr, batch_size):
    """Train one ordinary network with torch's SGD; return its per-step losses."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    batches = data.batches(x, y, batch_size, seed=seed)
    losses = []
    for _ in range(steps):
        xb, yb = next(batches)
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, message", [
    ({"batch_size": 0}, "batch_size=0"),
    ({"batch_size": 1}, "over a batch of one example"),
    ({"activations": ("sigmoid", "swish")}, "not allowed"),
    ({"activations": ("relu",)}, "must include 'sigmoid'"),
    ({"init": "orthogonal"}, "not allowed"),
    ({"unit": 10, "probe_units": 10}, "unit=10"),
    ({"probe_units": 101}, "probe_units=101"),
    ({"seeds": (0, 0)}, "must not repeat"),
    ({"thresholds": (0.95, 98.0)}, r"thresholds=\(0.95, 98.0\) must be <= 1.0"),
    ({"val_size": 59_990}, "val_size"),
])
def test_bad_parameters_raise_a_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        mnist.MnistConfig.for_profile("quick", **overrides)


def test_full_profile_is_the_papers_protocol():
    cfg = mnist.MnistConfig.for_profile("full")
    assert (cfg.steps, cfg.batch_size, cfg.hidden) == (50_000, 60, (100, 100, 100))
    assert len(cfg.seeds) >= 3 and set(cfg.activations) == {"sigmoid", "tanh", "relu"}
    assert cfg.init == "gaussian" and cfg.n_train == 60_000 and cfg.n_test == 10_000


# --- networks -----------------------------------------------------------------------------------


def test_nets_have_bn_before_each_nonlinearity_and_share_initial_weights():
    cfg = mnist.MnistConfig.for_profile("smoke")
    plain, normed = mnist.build_nets(cfg, "sigmoid", 3)
    kinds = [type(m) for m in normed]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Sigmoid] * 3 + [nn.Linear]
    assert [type(m) for m in plain] == [nn.Linear, nn.Sigmoid] * 3 + [nn.Linear]
    lin_p = [m for m in plain if isinstance(m, nn.Linear)]
    lin_n = [m for m in normed if isinstance(m, nn.Linear)]
    assert [m.bias is None for m in lin_n] == [True, True, True, False]   # BN's beta instead
    assert [(m.in_features, m.out_features) for m in lin_n] == [(784, 100), (100, 100),
                                                                (100, 100), (100, 10)]
    for a, b in zip(lin_p, lin_n):
        assert torch.equal(a.weight, b.weight)
    assert normed(torch.randn(5, 784)).shape == (5, 10)
    # "small random Gaussian" weights of the stated std (78,400 draws: within 2%)
    assert abs(lin_p[0].weight.std().item() - cfg.init_std) < 0.02 * cfg.init_std
    assert not torch.equal(lin_p[0].weight, mnist.build_nets(cfg, "sigmoid", 4)[0][0].weight)


def test_lecun_uniform_init_is_bounded_by_sqrt_3_over_fan_in():
    cfg = mnist.MnistConfig.for_profile("smoke", init="lecun_uniform")
    plain, _ = mnist.build_nets(cfg, "tanh", 0)
    w = plain[0].weight
    bound = (3 / 784) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound


# --- the stacked trainer ------------------------------------------------------------------------


def test_stacked_run_equals_separate_runs_over_five_steps():
    """Mixed activations, BN flags, seeds and learning rates: each model of the stack follows
    exactly the trajectory of its own ordinary torch run (its init, its minibatches, its lr)."""
    torch.manual_seed(0)
    x, y = torch.randn(60, 20), torch.randint(0, 10, (60,))
    specs = [("sigmoid", False, 0), ("sigmoid", True, 0), ("relu", True, 1), ("tanh", False, 2),
             ("tanh", True, 3)]
    lrs = [0.1, 0.2, 0.3, 0.5, 0.05]
    nets = small_nets(specs)
    reference = [copy.deepcopy(n) for n in nets]
    stack = mnist.StackedMLP.from_models(nets)
    out = mnist.train_stack(stack, x, y, [s for *_, s in specs], steps=5, batch_size=7, lr=lrs,
                            log_every=1)
    for i, (net, lr, (_, _, seed)) in enumerate(zip(reference, lrs, specs)):
        losses = train_separately(net, x, y, seed, 5, lr, 7)
        np.testing.assert_allclose(out["train_loss"][:, i], losses, rtol=1e-5, atol=1e-6)
        assert max_state_error(stack.to_models()[i], net) < 1e-5
    # and in eval mode (running statistics) on shared inputs
    assert_stack_equals_nets_in_eval_mode(stack, reference, torch.randn(11, 20))


def test_stack_rejects_bad_arguments():   # an unknown activation: tests/nn/test_stacked_mlp.py
    with pytest.raises(ValueError, match="one activation and one normed flag"):
        mnist.StackedMLP((4, 3, 2), ["relu", "relu"], [True])
    stack = mnist.StackedMLP((4, 3, 2), ["relu"], [True])
    with pytest.raises(ValueError, match="one seed per model"):
        mnist.train_stack(stack, torch.zeros(8, 4), torch.zeros(8, dtype=torch.long), [0, 1],
                          steps=1, batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match="batch_size=0"):
        mnist.train_stack(stack, torch.zeros(8, 4), torch.zeros(8, dtype=torch.long), [0],
                          steps=1, batch_size=0, lr=0.1)


def test_a_diverging_model_stops_alone():
    torch.manual_seed(1)
    x, y = torch.randn(60, 20) * 30, torch.randint(0, 10, (60,))
    specs = [("relu", False, 0), ("relu", False, 0)]
    stack = mnist.StackedMLP.from_models(small_nets(specs))
    out = mnist.train_stack(stack, x, y, [0, 0], steps=40, batch_size=10, lr=[1e4, 1e-3],
                            log_every=5, eval_fn=lambda s: {"w": s.weight[0].sum((1, 2))},
                            eval_steps=[0, 20, 40])
    assert out["diverged_at"][0] is not None and out["diverged_at"][1] is None
    assert np.isnan(out["w"][-1, 0]) and np.isfinite(out["w"][:, 1]).all()


def test_when_every_model_diverges_the_arrays_still_reach_the_last_step():
    torch.manual_seed(1)
    x, y = torch.randn(60, 20) * 30, torch.randint(0, 10, (60,))
    stack = mnist.StackedMLP.from_models(small_nets([("relu", False, 0), ("relu", False, 1)]))
    out = mnist.train_stack(stack, x, y, [0, 1], steps=40, batch_size=10, lr=1e4, log_every=5,
                            eval_fn=lambda s: {"w": s.weight[0].sum((1, 2))},
                            eval_steps=[0, 20, 40])
    assert all(at is not None for at in out["diverged_at"])
    assert list(out["log_step"]) == list(range(5, 41, 5)) and out["train_loss"].shape == (8, 2)
    assert list(out["eval_step"]) == [0, 20, 40] and np.isnan(out["w"][-1]).all()


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_run(tmp_path):
    torch.manual_seed(2)
    x, y = torch.randn(50, 20), torch.randint(0, 10, (50,))
    specs = [("sigmoid", True, 0), ("tanh", False, 1)]
    nets = small_nets(specs)
    straight = mnist.StackedMLP.from_models(nets)
    full = mnist.train_stack(straight, x, y, [0, 1], steps=20, batch_size=6, lr=0.3, log_every=5)
    ckpt = tmp_path / "ckpt.pt"
    first = mnist.StackedMLP.from_models(nets)
    mnist.train_stack(first, x, y, [0, 1], steps=20, batch_size=6, lr=0.3, log_every=5,
                      checkpoint=ckpt, checkpoint_every=10)
    assert ckpt.exists()    # the step-10 state, as a killed run would have left it
    resumed = mnist.StackedMLP.from_models(nets)
    again = mnist.train_stack(resumed, x, y, [0, 1], steps=20, batch_size=6, lr=0.3,
                              log_every=5, checkpoint=ckpt, checkpoint_every=10)
    assert max_state_error(resumed, straight) == 0.0
    np.testing.assert_array_equal(again["train_loss"], full["train_loss"])


# --- probes and schedules -------------------------------------------------------------------------


def test_percentile_probe_returns_the_three_series_with_the_right_length():
    torch.manual_seed(3)
    x, y = torch.randn(80, 20), torch.randint(0, 10, (80,))
    specs = [("sigmoid", False, 0), ("sigmoid", True, 0), ("relu", True, 1)]
    stack = mnist.StackedMLP.from_models(small_nets(specs))
    when = mnist.eval_schedule(30, 10, 0)
    out = mnist.train_stack(stack, x, y, [0, 0, 1], steps=30, batch_size=8, lr=0.2,
                            eval_fn=lambda s: mnist.evaluate_stack(s, x, y, units=5, chunk=33),
                            eval_steps=when)
    assert list(out["eval_step"]) == when == [0, 10, 20, 30]
    for p in ("p15", "p50", "p85"):
        assert out[p].shape == (len(when), 3, 5)
    assert (out["p15"] <= out["p50"]).all() and (out["p50"] <= out["p85"]).all()
    assert out["test_accuracy"].shape == (4, 3)
    # the probe measures the inputs to the nonlinearity: check one against the ordinary net
    net = stack.to_models()[1].eval()
    with torch.no_grad():
        z = net[:5](x)[:, :5]          # Linear, BN, σ, Linear, BN: the last hidden layer's input
    np.testing.assert_allclose(out["p50"][-1, 1], np.percentile(z.numpy(), 50, axis=0),
                               rtol=1e-4, atol=1e-5)


def test_eval_schedule_has_the_ends_the_grid_and_log_spaced_steps():
    when = mnist.eval_schedule(50_000, 2500, 20)
    assert when == sorted(set(when)) and when[0] == 0 and when[-1] == 50_000
    assert set(range(0, 50_001, 2500)) <= set(when)
    early = [s for s in when if 100 <= s <= 1000]
    assert len(early) == 21 and max(b / a for a, b in zip(early, early[1:])) < 1.3
    assert mnist.eval_schedule(7, 5, 20) == [0, 5, 7]


def test_steps_to_threshold_and_summary_on_a_known_record():
    record = {"eval_step": np.array([0, 100, 200, 300]),
              "test_accuracy": np.array([[0.1, 0.1], [0.96, 0.5], [0.97, np.nan], [0.99, 0.96]]),
              "models": [{"activation": "relu", "init": "lecun_uniform", "bn": True, "seed": 0,
                          "lr": 0.1},
                         {"activation": "relu", "init": "lecun_uniform", "bn": False, "seed": 0,
                          "lr": 0.1}]}
    np.testing.assert_array_equal(mnist.steps_to(record, 0.95), [100, 300])
    np.testing.assert_array_equal(mnist.steps_to(record, 0.98), [300, np.nan])
    np.testing.assert_array_equal(mnist.accuracy_at(record, 250), [0.97, np.nan])
    s = mnist.summary(record, (0.95, 0.98), at_step=100)
    assert s["relu", True]["final_mean"] == 0.99 and s["relu", False]["steps_to_0.98_mean"] is None
    rows = mnist.activation_table(record, (0.95, 0.98))
    assert rows[0]["BN"] == "no" and rows[0]["steps to 98%"] == "not reached (0/1)"


def test_choose_lr_takes_the_best_mean_and_counts_divergence_as_zero():
    g, u = "gaussian:0.01", "lecun_uniform"
    search = {"val_accuracy": np.array([[0.1] * 6, [0.9, np.nan, 0.8, 0.7, 0.5, 0.5]]),
              "models": [{"activation": "relu", "init": g, "lr": 3.0},
                         {"activation": "relu", "init": g, "lr": 10.0},
                         {"activation": "tanh", "init": g, "lr": 0.1},
                         {"activation": "tanh", "init": g, "lr": 1.0},
                         {"activation": "tanh", "init": u, "lr": 1.0},
                         {"activation": "tanh", "init": u, "lr": 0.3}]}
    assert mnist.choose_lr(search) == {g: {"relu": 3.0, "tanh": 0.1}, u: {"tanh": 0.3}}


def test_init_labels_parse_and_reject_nonsense():
    assert mnist.parse_init("gaussian:0.01") == ("gaussian", 0.01)
    assert mnist.init_label(*mnist.parse_init("gaussian:0.1")) == "gaussian:0.1"
    assert mnist.parse_init("lecun_uniform")[0] == "lecun_uniform"
    for bad in ("gaussian", "gaussian:-1", "gaussian:abc", "xavier"):
        with pytest.raises(ValueError, match="must be 'gaussian:STD' with 0 < STD <= 10 or one of"):
            mnist.MnistConfig.for_profile("smoke", compare_inits=(bad,))


# --- batch size 1 -------------------------------------------------------------------------------


@needs_mnist
def test_at_batch_size_one_bn_hidden_layers_never_move():
    """``mnist.AnyBatchNorm1d`` is ``norms.BatchNorm1d(allow_single_value=True)``, tested in
    test_norms.py; here: what it does to training."""
    cfg = mnist.MnistConfig.for_profile("smoke", bs1_steps=30, lr=0.5, activations=("sigmoid",))
    out = mnist.batch_size_one(cfg)
    assert out["weight_change"][:3] == [0.0, 0.0, 0.0]   # exactly: zero gradient
    assert out["weight_change"][3] > 0                    # only the output layer learns
    assert out["train_mode_output_spread"] == 0.0         # the input does not matter


# --- short runs that learn ----------------------------------------------------------------------


@needs_mnist
def test_a_short_run_on_a_small_mnist_subset_learns_with_and_without_bn():
    cfg = mnist.MnistConfig.for_profile("smoke", steps=150, activations=("sigmoid", "relu"),
                                        lr=0.5, n_train=2000, init_std=0.1)
    out = mnist.train_all(cfg)
    final = out["test_accuracy"][-1]
    assert final.shape == (4,)
    assert (final > 0.5).all(), f"accuracy after 150 steps: {final} (chance: 0.1)"
    assert [m["bn"] for m in out["models"]] == [False, True, False, True]


@needs_mnist
def test_lr_search_scores_every_grid_point_on_held_out_images():
    cfg = mnist.MnistConfig.for_profile("smoke", lr_grid=(0.001, 0.3), search_steps=60,
                                        compare_inits=("gaussian:0.1",))
    out = mnist.lr_search(cfg)
    setups = [(m["activation"], m["init"], m["lr"]) for m in out["models"]]
    assert setups == [("sigmoid", "gaussian:0.01", 0.001), ("sigmoid", "gaussian:0.01", 0.3),
                      ("relu", "gaussian:0.01", 0.001), ("relu", "gaussian:0.01", 0.3),
                      ("sigmoid", "gaussian:0.1", 0.001), ("sigmoid", "gaussian:0.1", 0.3)]
    assert not any(m["bn"] for m in out["models"])
    assert out["val_accuracy"].shape[1] == 6
    assert out["chosen_lr"]["gaussian:0.01"]["relu"] == 0.3


def test_config_of_a_record_is_the_config_that_made_it():
    from bn_utils.book import results

    cfg = mnist.MnistConfig.for_profile("quick", seeds=(4, 5))
    record = results.save(mnist.CHAPTER, "dummy", cfg, {"x": 1})
    assert mnist.config_of(record) == cfg


# --- bad input and divergence ---------------------------------------------------------------------


def test_a_planted_pickle_checkpoint_is_refused_without_running(tmp_path):
    ckpt, marker = tmp_path / "ckpt.pt", tmp_path / "marker"
    torch.save({"stack": Planted(marker), "step": 1}, ckpt)
    stack = mnist.StackedMLP.from_models(small_nets([("relu", False, 0)]))
    with pytest.raises(ValueError, match="not a plain checkpoint"):
        mnist.train_stack(stack, torch.randn(20, 20), torch.randint(0, 10, (20,)), [0], steps=4,
                          batch_size=5, lr=0.1, checkpoint=ckpt, checkpoint_every=2)
    assert not marker.exists()


def test_a_finite_blow_up_is_divergence_and_is_reported_as_such(monkeypatch):
    torch.manual_seed(4)
    x, y = torch.randn(60, 20), torch.randint(0, 10, (60,))
    stack = mnist.StackedMLP.from_models(small_nets([("relu", False, 0), ("relu", False, 1)]))
    real, calls = mnist.per_model_loss, []

    def blowing_up(logits, target):  # model 0's loss x1e20 from step 10 on: finite, but no training
        calls.append(1)
        return real(logits, target) * torch.tensor([1.0 if len(calls) <= 10 else 1e20, 1.0])

    from bn_utils.experiments.ch04_mnist import training  # the loop looks the loss up there
    monkeypatch.setattr(training, "per_model_loss", blowing_up)
    out = mnist.train_stack(stack, x, y, [0, 1], steps=40, batch_size=10, lr=[0.0, 0.1],
                            log_every=5, eval_fn=lambda s: {"test_accuracy": torch.tensor([0.5, 0.5])},
                            eval_steps=[0, 20, 40])
    assert np.isfinite(out["train_loss"]).all()
    assert out["diverged_at"] == [15, None]
    out["models"] = [{"activation": "relu", "init": "g", "bn": b, "seed": 0, "lr": 0.1}
                     for b in (False, True)]
    rows = mnist.activation_table(out, (0.4, 0.9))
    assert rows[0]["test accuracy at step 40"] == "diverged at step 15"
    assert rows[0]["steps to 90%"] == "diverged at step 15"
    assert rows[1]["steps to 90%"] == "not reached (0/1)"


def test_drift_ratios_are_text_and_never_inf():
    nan = np.nan
    p = np.array([[[0.0], [0.0]], [[1.0], [nan]], [[2.0], [nan]]])   # (evals, models, units)
    record = {"eval_step": np.array([0, 10, 20]), "p15": p - 1, "p50": p, "p85": p + 1,
              "diverged_at": [None, 10],
              "models": [{"activation": "sigmoid", "init": "g", "bn": b, "seed": 0, "lr": 0.1}
                         for b in (False, True)]}
    assert mnist.drift_ratios(record) == {"drift_ratio": "not measurable (the runs diverged)",
                                          "spread_ratio": "not measurable (the runs diverged)"}
    assert mnist.drift_table(record)[1]["range of the median"] == "diverged at step 10"


class _Killed(Exception):
    """What a run killed after its first checkpoint raises in this test."""


@needs_mnist
def test_a_checkpoint_copied_from_another_seeds_run_is_refused(monkeypatch):
    from bn_utils.book import results
    from bn_utils.experiments.ch04_mnist import experiment

    cfg = mnist.MnistConfig.for_profile("smoke", seeds=(0,), lr=0.3, checkpoint_every=20)
    other = cfg.replace(seeds=(1,))
    theirs, path = (results.checkpoint_path(mnist.CHAPTER, "runs", c) for c in (other, cfg))
    evaluate = experiment.evaluate_stack

    def killed_after_a_checkpoint(*args, **kwargs):
        if theirs.exists():
            raise _Killed
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(experiment, "evaluate_stack", killed_after_a_checkpoint)
    with pytest.raises(_Killed):             # seed 1's run, killed after its step-20 checkpoint
        mnist.train_all(other)
    monkeypatch.setattr(experiment, "evaluate_stack", evaluate)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(theirs.read_bytes())    # ... copied over seed 0's checkpoint
    with pytest.raises(ValueError, match=f"checkpoint {path} belongs to another run.*"
                                         "delete it to start the run afresh"):
        mnist.train_all(cfg)
    out = mnist.train_all(other)             # its own run resumes from it
    assert out["model_steps_per_second"] is None and not theirs.exists()


def test_init_reading_says_who_reached_the_threshold_first_as_the_stored_table_shows(monkeypatch):
    from pathlib import Path

    from bn_utils.experiments.ch04_mnist import analysis

    monkeypatch.setenv("BN_RESULTS_DIR", str(Path(__file__).resolve().parents[2] / "results"))
    cfg = mnist.MnistConfig.for_profile("full")
    inits, runs = (results.best_record(mnist.CHAPTER, n) for n in ("inits", "runs"))
    assert inits is not None and runs is not None, "chapter 04's full records are committed"
    reading = analysis.init_reading(inits, runs, cfg)
    rows = analysis.init_table(inits, runs, cfg)
    steps = {(r["initialisation"], r["BN"]): float(r["steps to 95%"].split(" ±")[0].replace(",", ""))
             for r in rows}
    for init in ("gaussian:0.1", "lecun_uniform"):
        plain_first = steps[analysis.init_words(init), "no"] < steps[analysis.init_words(init), "yes"]
        assert ("network without BN reached 95% first" in reading[init]) == plain_first
        assert reading[init].startswith(f"from {analysis.init_words(init)} weights")
    assert reading["main_lead"].endswith(" points") and "reached 95% first" in reading["first"]


def test_the_activation_gaps_name_the_nonlinearity_each_lead_is_largest_for():
    def record(final, steps):        # final accuracy and steps to 95 % per (activation, bn)
        models = [{"activation": a, "bn": bn, "init": "gaussian:0.01", "seed": 0, "lr": 1.0}
                  for a in ("sigmoid", "relu") for bn in (False, True)]
        keys = [(m["activation"], m["bn"]) for m in models]
        acc = np.array([[0.1] * 4] + [[0.96 if steps[k] <= s else 0.5 for k in keys]
                                      for s in (100, 200, 400)] + [[final[k] for k in keys]])
        return {"models": models, "eval_step": [0, 100, 200, 400, 800], "test_accuracy": acc}
    r = record({("sigmoid", False): 0.96, ("sigmoid", True): 0.98, ("relu", False): 0.97,
                ("relu", True): 0.975}, {("sigmoid", False): 400, ("sigmoid", True): 200,
                                         ("relu", False): 400, ("relu", True): 100})
    text = mnist.activation_gaps(r, 0.95)
    assert "BN leads by 2.0 points with sigmoid, 0.5 points with ReLU (largest with sigmoid)" in text
    assert "2.0x fewer steps with sigmoid, 4.0x fewer steps with ReLU (largest with ReLU)" in text


def test_search_failures_name_the_runs_that_blew_up_and_the_top_rate():
    models = [{"activation": a, "init": "gaussian:0.01", "lr": lr} for a in ("sigmoid", "relu")
              for lr in (0.1, 1.0, 10.0)]
    final = [0.9, 0.95, 0.1, 0.9, np.nan, 0.09]
    diverged = [None, None, None, None, 40, None]
    text = mnist.search_failures({"models": models, "val_accuracy": [final], "diverged_at": diverged})
    assert text.startswith("at the largest rate of the grid, 10, every network ends at chance")
    assert text.endswith("for ReLU at rate 1")
    final[2] = 0.8
    text = mnist.search_failures({"models": models, "val_accuracy": [final], "diverged_at": [None] * 6})
    assert "the best network reaches 0.80" in text and text.endswith("no run's loss became infinite")


def test_search_failures_also_name_networks_at_chance_below_the_top_rate():
    models = [{"activation": a, "init": "gaussian:0.01", "lr": lr} for a in ("sigmoid", "tanh")
              for lr in (0.1, 1.0, 10.0)]
    final = [0.1, 0.95, 0.1, 0.9, 0.11, 0.1]            # sigmoid stuck at 0.1, tanh at chance at 1
    text = mnist.search_failures({"models": models, "val_accuracy": [final], "diverged_at": [None] * 6})
    assert "below it, sigmoid at rate 0.1 and tanh at rate 1 end at chance too" in text
