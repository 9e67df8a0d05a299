"""Chapter 09's configuration, networks and measurements, and the verdicts page's record reading."""

import numpy as np
import pytest
import torch
from torch import nn

from bn_utils import models, norms, results, verdicts
from bn_utils.experiments import in_practice as P
from bn_utils.experiments import in_practice_batch as B
from bn_utils.experiments import in_practice_cost as C
from bn_utils.experiments import in_practice_mlp as M
from bn_utils.inception_net import TinyInception


def test_every_profile_builds_and_reference_is_smaller_than_full():
    cfgs = {p: P.PracticeConfig.for_profile(p) for p in ("smoke", "quick", "reference", "full")}
    assert cfgs["reference"].sweep_steps < cfgs["full"].sweep_steps
    assert cfgs["smoke"].sweep_steps < cfgs["quick"].sweep_steps < cfgs["reference"].sweep_steps


@pytest.mark.parametrize("overrides, word", [
    ({"ga_keep": 4, "ga_population": 4}, "ga_keep=4"),
    ({"ga_log10_lr": (1.0, -4.0)}, "ga_log10_lr"),
    ({"gn_groups": 3, "cnn_width": 8}, "gn_groups=3"),
    ({"norms": ("bn", "batch")}, "norms"),
    ({"ga_population": 1}, "ga_population=1"),
    ({"renorm_rmax": 0.5}, "renorm_rmax=0.5"),
    ({"renorm_dmax": -1.0}, "renorm_dmax=-1.0"),
])
def test_nonsense_parameters_fail_before_any_work(overrides, word):
    with pytest.raises(ValueError, match=word):
        P.PracticeConfig.for_profile("smoke", **overrides)


@pytest.mark.parametrize("norm", ["none", "bn", "brn", "ln", "gn", "rms"])
def test_cnn_gives_ten_logits_for_every_norm(norm):
    model = P.cnn(norm, 4, renorm={"rmax": 3.0, "dmax": 5.0})
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_mlp_puts_bn_before_or_after_the_nonlinearity_and_dropout_where_asked():
    before = P.practice_mlp([5, 4, 4, 3], act="sigmoid", placement="before")
    after = P.practice_mlp([5, 4, 4, 3], act="sigmoid", placement="after")
    kinds = lambda m: [type(x).__name__ for x in m]  # noqa: E731
    assert kinds(before)[:3] == ["Linear", "BatchNorm1d", "Sigmoid"] and before[0].bias is None
    assert kinds(after)[:3] == ["Linear", "Sigmoid", "BatchNorm1d"] and after[0].bias is not None
    drop = P.practice_mlp([5, 4, 4, 3], dropout=0.5, dropout_place="before_bn")
    assert kinds(drop)[:4] == ["Linear", "Dropout", "BatchNorm1d", "ReLU"]
    last = P.practice_mlp([5, 4, 4, 3], dropout=0.5, dropout_place="last_only")
    assert kinds(last).count("Dropout") == 1 and kinds(last)[-2] == "Dropout"
    with pytest.raises(ValueError, match="placement='middle'"):
        P.practice_mlp([5, 4, 3], placement="middle")


def test_init_scale_does_not_change_a_bn_network_output():
    torch.manual_seed(0)
    a = P.practice_mlp([6, 5, 5, 3], init_scale=1.0)
    b = P.practice_mlp([6, 5, 5, 3], init_scale=1.0)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for layer in list(b)[:-1]:
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(10.0)
    x = torch.randn(8, 6)
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-4)


def test_train_mode_accuracy_leaves_running_statistics_alone():
    model = P.cnn("bn", 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc = P.train_mode_accuracy(model, torch.randn(10, 1, 28, 28), torch.randint(0, 10, (10,)), 4)
    assert 0.0 <= acc <= 1.0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def _cnn_with_our_bn(width: int) -> nn.Sequential:
    """Return chapter 09's small CNN with the package's own BatchNorm2d in place of torch's."""
    model = P.cnn("bn", width)
    for i, m in enumerate(model):
        if isinstance(m, nn.BatchNorm2d):
            model[i] = norms.BatchNorm2d(m.num_features)
    return model


@pytest.mark.parametrize("build", [lambda w: P.cnn("bn", w), _cnn_with_our_bn], ids=["torch_bn", "our_bn"])
def test_frozen_norms_keep_bn_in_eval_mode_during_training(build):
    model = build(4)
    net = P.FrozenNorms(model)
    net.train()
    bns = models.bn_layers(model)
    assert len(bns) == 2, "the CNN should have two BN layers"
    assert all(not bn.training for bn in bns) and model[0].training
    mean = bns[0].running_mean.clone()
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    P.fit(net, x, y, steps=2, batch_size=2, lr=0.1, seed=0)
    assert torch.equal(bns[0].running_mean, mean)


@pytest.mark.parametrize("bn1d", [nn.BatchNorm1d, norms.BatchNorm1d], ids=["torch_bn", "our_bn"])
def test_variance_shift_is_one_when_running_statistics_fit_the_data(bn1d):
    model = nn.Sequential(nn.Linear(4, 3), bn1d(3, momentum=None))
    x = torch.randn(500, 4) * 2
    model.train()(x)                    # cumulative average over one batch: the batch's statistics
    ratios = M.bn_variance_shift(model, x)
    assert len(ratios) == 1 and ratios[0] == pytest.approx(1.0, abs=1e-4)


def test_folding_every_bn_of_tiny_inception_keeps_its_eval_output():
    torch.manual_seed(0)
    net = TinyInception(width=4, bn=True)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        net.train()(x)
    folded = C.fold_all(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net.eval()(x), rtol=1e-4, atol=1e-4)


def test_breaking_batch_is_the_largest_batch_worse_than_no_norm():
    assert B.breaking_batch((2, 8, 32), (0.2, 0.9, 0.95), (0.3, 0.8, 0.9)) == 2
    assert B.breaking_batch((2, 8, 32), (np.nan, 0.9, 0.95), (0.3, 0.8, 0.96)) == 32
    assert B.breaking_batch((2, 8), (0.5, 0.9), (0.3, 0.8)) is None


def test_verdicts_use_the_best_stored_profile_and_say_when_nothing_is_stored(tmp_path):
    cfg = P.PracticeConfig.for_profile("smoke")
    for profile, value in (("quick", 1.0), ("reference", 2.0)):
        results.save(P.CHAPTER, "cost", cfg.replace(profile=profile), {"x": value})
    assert verdicts.best_record(P.CHAPTER, "cost")["x"] == 2.0
    assert verdicts.best_record(P.CHAPTER, "missing") is None
    rows = verdicts.verdicts(tmp_path / "empty")
    assert all(r["ours (profile, seeds)"] == verdicts.NOT_RUN for r in rows)
    assert verdicts.tally(rows)["not tested"] == len(rows)


def test_a_smoke_record_is_shown_but_judges_no_claim():
    from bn_utils.experiments import ensemble as ens

    cfg = ens.EnsembleConfig.for_profile("smoke")
    member = {"top1": 0.6, "top5": 0.9, "diverged": False, "reused_from_chapter_05": True}
    out = {"members": {n: member for n in cfg.members}, "n_used": 2, "best_member": cfg.members[0],
           "ensemble": {"top1": 0.7, "top5": 0.95}, "gain_top1": 0.1, "gain_top1_se": 0.01}
    results.save(ens.CHAPTER, "ensemble", cfg, out)
    rows = [r for r in verdicts.verdicts() if r["chapter"] == "06"]
    assert rows and all(r["holds at our scale?"].startswith("not tested") for r in rows)
    assert all("(smoke" in r["ours (profile, seeds)"] for r in rows)
    results.save(ens.CHAPTER, "ensemble", cfg.replace(profile="quick"), out)   # a quick one judges
    assert {r["holds at our scale?"] for r in verdicts.verdicts() if r["chapter"] == "06"} == {"yes"}
