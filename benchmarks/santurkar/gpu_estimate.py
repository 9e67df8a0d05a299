"""What chapters 07 and 08's ``full`` profiles should cost on one GPU, from counts, not from a run.

For every run of the chapter's ``full`` configuration we count the passes it makes (a pass: one
forward and backward of a minibatch): its SGD steps; its measurements (chapter 07: the gradient-ICS
of each measured layer, one pass for G and one per layer for G'; the activation statistics, a
forward of one batch; chapter 08: one pass for the gradient and one per step size of the
landscape), made in strict float32; and its evaluations (forward passes over the test set and the
training probe, a third of a pass per minibatch). Per pass we count

- the floating-point operations of the network at its full width (``torch.utils.flop_counter``
  on the ``meta`` device, so nothing is computed here), and
- the aten operators it dispatches (each one or a few kernel launches; ``ops_per_pass``, measured
  by the profiler on a narrow copy of the same network, since the count does not depend on width).

A pass then takes the longer of ``operators × launch cost`` and ``FLOPs / throughput``. The
throughputs and the launch cost are assumptions, printed beside the result: a GPU run is the only
measurement that counts. The count leans towards too much: every measuring pass is counted as a
whole forward and backward in strict float32, while G' only back-propagates to its layer and the
activation statistics are one forward pass; the operators are those the CPU dispatches.

    python benchmarks/santurkar/gpu_estimate.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bn_utils.experiments import (
    ch07_santurkar_noise as noise, santurkar, ch08_santurkar_smoothness as smoothness)

# (label, launch cost per operator in s, TFLOP/s when training (TF32 convolutions, torch's
# default for cuDNN), TFLOP/s when measuring (strict float32, the chapters' choice))
SCENARIOS = (("optimistic", 5e-6, 200.0, 40.0), ("pessimistic", 10e-6, 60.0, 15.0))
EVAL_BATCH = 2000   # train.evaluate's minibatch


def _loss(model, x, y):
    out = model(x)
    return F.cross_entropy(out, y) if y.dtype == torch.long else ((out - y) ** 2).sum()


def _batch(cfg, arch: str, device: str | torch.device = "cpu"):
    if arch == "vgg":
        with torch.device(device):
            return torch.randn(cfg.batch_size, 3, 32, 32), torch.randint(0, 10, (cfg.batch_size,))
    with torch.device(device):
        return torch.randn(cfg.dln_examples, cfg.dln_width), torch.randn(cfg.dln_examples, cfg.dln_width)


def flops_per_pass(cfg, run: santurkar.Run) -> float:
    """Return the FLOPs of one forward and backward pass of ``run``'s network at ``cfg``'s width."""
    with torch.device("meta"):
        model = santurkar.build_model(cfg, run)
    x, y = _batch(cfg, run.arch, "meta")
    counter = FlopCounterMode(display=False)
    with counter:
        _loss(model, x, y).backward()
    return float(counter.get_total_flops())


def ops_per_pass(cfg, run: santurkar.Run) -> int:
    """Return the aten operators one SGD step of ``run``'s network dispatches (top level, views
    and allocations not counted), on a narrow copy on this CPU."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ch05_cifar_inception.images_per_second import ops_per_step

    small = cfg.replace(width=1 / 32, batch_size=8, dln_examples=16) if run.arch == "vgg" else \
        cfg.replace(dln_examples=16)
    model = santurkar.build_model(small, run)
    opt = torch.optim.SGD(model.parameters(), lr=run.lr, foreach=True)
    x, y = _batch(small, run.arch)

    def step():
        loss = _loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ops_per_step(step)


def passes(cfg, run: santurkar.Run, chapter: str) -> dict:
    """Return the training and measuring passes of one run, and its evaluation passes."""
    vgg = run.arch == "vgg"
    steps = cfg.vgg_steps if vgg else cfg.dln_steps
    every = cfg.measure_every if vgg else cfg.dln_measure_every
    n_measures = len(santurkar.measure_steps(steps, every))
    if chapter == noise.CHAPTER:
        layers = cfg.ics_layers if vgg else cfg.dln_ics_layers
        per_measure = 1 + len(layers) + (1 / 3 if vgg and run.lr == cfg.vgg_lrs[0] else 0)
    else:
        per_measure = 1 + cfg.n_step_sizes
    evals = 0.0
    if vgg:   # fit evaluates at step 0, every eval_every steps and at the end
        n_evals = len(range(0, steps, cfg.eval_every)) + 1
        evals = n_evals * (cfg.n_test + cfg.train_probe) / cfg.batch_size / 3
    return {"train": steps, "evaluate": evals, "measure": n_measures * per_measure}


def estimate(chapter: str, cfg) -> None:
    runs = (noise.runs if chapter == noise.CHAPTER else smoothness.runs)(cfg)
    cost = {}    # (arch, norm) -> (flops, ops), computed once per network
    totals = {label: 0.0 for label, *_ in SCENARIOS}
    counted = {"train": 0.0, "measure": 0.0}
    for run in runs:
        key = (run.arch, run.norm)
        if key not in cost:
            cost[key] = (flops_per_pass(cfg, run), ops_per_pass(cfg, run))
        flops, ops = cost[key]
        p = passes(cfg, run, chapter)
        counted["train"] += p["train"] + p["evaluate"]
        counted["measure"] += p["measure"]
        # evaluations run in minibatches of 2,000 (train.evaluate): 1/16 of the launches per image
        eval_launch_share = cfg.batch_size / EVAL_BATCH
        for label, launch, train_tflops, measure_tflops in SCENARIOS:
            totals[label] += p["train"] * max(ops * launch, flops / (train_tflops * 1e12))
            totals[label] += p["evaluate"] * max(ops * launch * eval_launch_share,
                                                 flops / (train_tflops * 1e12))
            totals[label] += p["measure"] * max(ops * launch, flops / (measure_tflops * 1e12))
    print(f"\n{chapter}, profile full: {len(runs)} runs, {counted['train']:,.0f} training passes "
          f"(evaluations included), {counted['measure']:,.0f} measuring passes")
    for (arch, norm), (flops, ops) in cost.items():
        print(
            f"  {arch:>3} {santurkar.LABELS[norm]:<18} {flops / 1e9:10.3f} GFLOP per pass, {ops:4d} operators"
        )
    for label, launch, train_tflops, measure_tflops in SCENARIOS:
        print(f"  {label:>11} ({launch * 1e6:.0f} µs per operator, {train_tflops:.0f} TFLOP/s training, "
              f"{measure_tflops:.0f} measuring): ≈ {totals[label] / 60:.0f} min on one GPU")


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; estimates from counts, not measurements")
    estimate(noise.CHAPTER, noise.NoiseConfig.for_profile("full"))
    estimate(smoothness.CHAPTER, smoothness.SmoothnessConfig.for_profile("full"))


if __name__ == "__main__":
    main()
