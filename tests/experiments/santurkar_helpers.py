"""Made-up records of chapters 7 and 8 that ``test_santurkar.py``, ``test_ch07_santurkar_noise.py``
and ``test_ch08_santurkar_smoothness.py`` build their tests on: a chapter 7 record
(``_noise_record``), a chapter 8 record (``_smoothness_record``), and the seeds, per-seed shifts and
accuracies they are made with. It holds no tests."""

import numpy as np

from bn_utils.book import results
from bn_utils.experiments import ch07_santurkar_noise as noise, ch08_santurkar_smoothness as smoothness

JITTER = (0.0, 0.01, -0.01)   # per seed: what differs between seeds of one network
THREE = (0, 1, 2)
NOISE_ACC = {"none": 0.5, "bn": 0.6, "noisy_bn": 0.56, "noise": 0.2}


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
