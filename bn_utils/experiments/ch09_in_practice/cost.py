"""Chapter 09, experiment 7: what BN costs in time, and what folding it into the layer before saves.

Time per training step (forward, backward, SGD step) and per inference batch of the student's MLP
(4 hidden layers) and of TinyInception, with and without BN, and at inference with BN folded into
the preceding layer (``models.fold_nested``). The networks run alternately, so a machine busy with
other work slows all of them alike; a timing run gives medians and their ratios, and
:func:`over_runs` gathers the ratios of several runs.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from ...book import results
from ... import runtime
from ...nn import models
from ...nn.tiny_inception import TinyInception
from .config import PracticeConfig, STUDENT_MLP

# The student project's timings (its Table 3.2.1: the 4×1000 MLP at batch 1024, NumPy on a CPU),
# seconds per step without BN (their control model) and with BN.
STUDENT_SECONDS = {"train": {"no BN": 0.249, "BN": 0.387}, "inference": {"no BN": 0.124, "BN": 0.166}}
# The slowdowns its text quotes for them (section 3.3): (BN − no BN) / BN, the share of BN's time
# that the control does not spend (not BN's extra time over the control's).
STUDENT_QUOTED_SLOWDOWNS = {"train": 0.356, "inference": 0.253}


def student_ratios() -> dict:
    """Return the student's BN / no-BN time ratios {train, inference}, from their timings."""
    return {what: t["BN"] / t["no BN"] for what, t in STUDENT_SECONDS.items()}


def _networks(cfg: PracticeConfig) -> dict:
    """Return {family: (input shape, {"no BN", "BN"} models)} with trained-like BN statistics."""
    widths = [784] + [cfg.cost_width] * 4 + [10]
    torch.manual_seed(0)
    nets = {"MLP": ((cfg.cost_batch, 784), {"no BN": models.mlp(widths, activation_name="relu"),
                                             "BN": models.mlp(widths, activation_name="relu", norm="bn")}),
            "TinyInception": ((cfg.cost_inception_batch, 3, 32, 32),
                              {"no BN": TinyInception(width=cfg.cost_inception_width, bn=False),
                               "BN": TinyInception(width=cfg.cost_inception_width, bn=True)})}
    return nets


def timing(cfg: PracticeConfig) -> dict:
    """Return median seconds per training step and per inference batch for every network."""
    device = runtime.default_device()
    out = {}
    for family, (shape, nets) in _networks(cfg).items():
        x = torch.randn(*shape, device=device)
        y = torch.randint(0, 10, (shape[0],), device=device)
        nets = {k: v.to(device) for k, v in nets.items()}
        with torch.no_grad():
            nets["BN"].train()(x)   # running statistics from one batch: folding needs some
        nets["BN folded"] = models.fold_nested(nets["BN"])
        opts = {k: torch.optim.SGD(v.parameters(), lr=1e-3) for k, v in nets.items() if k != "BN folded"}

        def step(k):
            net = nets[k].train()
            loss = nn.functional.cross_entropy(net(x), y)
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()

        def infer(k):
            with torch.inference_mode():
                nets[k].eval()(x)

        fns = {f"{k}/{what}": functools.partial(step if what == "train" else infer, k)
               for k in nets for what in ("train", "inference") if not (k == "BN folded" and what == "train")}
        # two warm-up rounds: allocations and lazy initialisation are not what we time
        for key, seconds in runtime.alternating_medians(fns, cfg.cost_repeats, warmup=2, device=device).items():
            out[f"{family}/{key}"] = seconds
    out["device"] = results.device_description(device)
    return out


def ratios(record: results.Record) -> dict:
    """Return per network family the BN / no-BN time ratios (train, inference, folded inference)."""
    out = {}
    for family in ("MLP", "TinyInception"):
        t = {k.split("/", 1)[1]: v for k, v in record.metrics.items() if k.startswith(family + "/")}
        out[family] = {"train": t["BN/train"] / t["no BN/train"],
                       "inference": t["BN/inference"] / t["no BN/inference"],
                       "folded inference": t["BN folded/inference"] / t["no BN/inference"]}
    return out


def over_runs(records, family: str = "MLP") -> dict:
    """Return, over the timing runs ``records``, each BN / no-BN ratio of ``family`` (train,
    inference, folded inference) as ``{"runs": [one per run], "mean": their mean}``, and under
    ``"no BN train seconds"`` each run's median seconds per training step without BN."""
    per_run = [ratios(r)[family] for r in records]
    out = {k: {"runs": [v[k] for v in per_run], "mean": float(np.mean([v[k] for v in per_run]))}
           for k in ("train", "inference", "folded inference")}
    out["no BN train seconds"] = [float(r.metrics[f"{family}/no BN/train"]) for r in records]
    return out


def table(record: results.Record, cfg: PracticeConfig) -> list[dict]:
    """Return the time ratios BN / no BN beside the student's (MLP at batch 1024)."""
    r, student = ratios(record), student_ratios()
    net = STUDENT_MLP
    rows = [{"measurement": f"student: MLP {net['hidden_layers']}×{net['hidden_width']}, batch {net['batch']} (Higgs)",
             "train step": student["train"],
             "inference": student["inference"], "inference, BN folded": None}]
    names = {"MLP": f"ours: MLP 4×{cfg.cost_width}, batch {cfg.cost_batch}",
             "TinyInception": f"ours: TinyInception w{cfg.cost_inception_width}, batch {cfg.cost_inception_batch}"}
    for family, v in r.items():
        rows.append({"measurement": names[family], "train step": v["train"], "inference": v["inference"],
                     "inference, BN folded": v["folded inference"]})
    return rows
