"""Training throughput of the book's networks against a plain PyTorch loop, in one process.

For each workload the same model, batch and input are trained three ways: ``torch`` (a plain
loop: ``nn`` modules, ``torch.optim.SGD``, channels_last for conv nets, torch's default threads),
``project`` (what the chapter runs today for one model) and ``stacked K`` (K models of the same
shape as one network: ``stacked_convnets.py``, beside this file, for conv nets and the deep
linear net, the chapter's ``StackedMLP`` for the MLP). The variants run interleaved, in rounds,
and we print the median, so a neighbour's load on a shared machine hits them all alike: the
ratios are the numbers to read.
Rates are examples per second *per trained model* (K models at once count K times).

    python benchmarks/throughput_vs_torch.py [--rounds 3] [--seconds 2] [--only NAME] [--extras]

``--extras`` adds what we tried on top: bfloat16 autocast (CPU) on the stacked path and torch's
fused SGD step on the plain loop; ``--compile`` adds ``torch.compile`` of the stacked
TinyInception (its compile time printed apart).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import stacked_convnets as stacked
from bn_utils.nn import models
from bn_utils.training import train
from bn_utils.experiments import ch05_cifar_inception as inc
from bn_utils.experiments import ch04_mnist as mnist
from bn_utils.nn.stacked_mlp import StackedSGD

Step = Callable[[], None]


def sgd_step(model: nn.Module, opt, loss_fn, x, y, autocast: torch.dtype | None = None) -> Step:
    """Return a function that runs one training step of ``model`` on the fixed batch ``(x, y)``."""
    def step():
        with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            out = model(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def conv_batch(k: int, n: int, seed: int = 0):
    """Return K minibatches of random normalised images (K, N, 3, 32, 32) and labels (K, N)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(k, n, 3, 32, 32, generator=gen), torch.randint(0, 10, (k, n), generator=gen)


def conv_workload(make: Callable[[int], nn.Module], batch: int, ks: tuple[int, ...], lr: float,
                  wd: float, project: Callable[[], tuple[nn.Module, torch.optim.Optimizer]],
                  extras: bool, compile_: bool = False) -> dict[str, tuple[Step, int]]:
    """Return ``{variant: (step, models trained per step)}`` of a conv net workload."""
    x, y = conv_batch(max(ks), batch)
    cl = torch.channels_last
    xcl = x[0].contiguous(memory_format=cl)
    net = make(0).to(memory_format=cl)
    out = {"torch": (sgd_step(net, torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9,
                                                   weight_decay=wd), F.cross_entropy, xcl, y[0]), 1)}
    model, opt = project()
    out["project"] = (sgd_step(model, opt, F.cross_entropy, xcl, y[0]), 1)
    for k in ks:
        net = stacked.stack([make(s).to(memory_format=cl) for s in range(k)])
        opt = StackedSGD(net.parameters(), k, lr=lr, momentum=0.9, weight_decay=wd)
        xs = stacked.stack_inputs(x[:k].unbind(0))
        out[f"stacked {k}"] = (sgd_step(net, opt, stacked.cross_entropy, xs, y[:k]), k)
    if extras:
        k = ks[0]
        net = stacked.stack([make(s).to(memory_format=cl) for s in range(k)])
        opt = StackedSGD(net.parameters(), k, lr=lr, momentum=0.9, weight_decay=wd)
        xs = stacked.stack_inputs(x[:k].unbind(0))
        out[f"stacked {k} bf16"] = (sgd_step(net, opt, stacked.cross_entropy, xs, y[:k],
                                             autocast=torch.bfloat16), k)
        net = make(0).to(memory_format=cl)
        fused = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=wd, fused=True)
        out["torch fused SGD"] = (sgd_step(net, fused, F.cross_entropy, xcl, y[0]), 1)
    if compile_:
        k = ks[0]
        net = stacked.stack([make(s).to(memory_format=cl) for s in range(k)])
        opt = StackedSGD(net.parameters(), k, lr=lr, momentum=0.9, weight_decay=wd)
        xs = stacked.stack_inputs(x[:k].unbind(0))
        out[f"stacked {k} compiled"] = (compiled(net, opt, stacked.cross_entropy, xs, y[:k]), k)
    return out


def compiled(model: nn.Module, opt, loss_fn, x, y) -> Step:
    """Return a training step whose forward and backward are ``torch.compile``d (compiled now;
    the seconds it took are printed)."""
    fn = torch.compile(model)
    t0 = time.perf_counter()
    step = sgd_step(fn, opt, loss_fn, x, y)
    step()
    print(f"  (torch.compile of a {type(model).__name__}: {time.perf_counter() - t0:.0f} s)")
    return step


def inception_workload(bn: bool, extras: bool, compile_: bool = False) -> dict:
    """Chapter 05: TinyInception at the chapter's width and batch (16, 32), the 3 seeds of a row."""
    cfg = inc.AblationConfig.for_profile("full")
    rc = cfg.run_config("BN-Baseline" if bn else "Inception", 0)

    def make(seed: int) -> nn.Module:
        return inc.build_model(rc.replace(seed=seed, channels_last=False))

    def project():
        model = inc.build_model(rc)
        return train.Autocast(model, None), inc.optimizer(model, rc)
    return conv_workload(make, rc.batch_size, (3, 9), rc.lr, rc.weight_decay, project, extras,
                         compile_)


def vgg_workload(extras: bool) -> dict:
    """Chapters 07/08: the quick profile's VGG (vgg11, width 1/8, batch 128) with BN."""
    from bn_utils.experiments import santurkar
    from bn_utils.experiments.ch07_santurkar_noise import NoiseConfig

    cfg = NoiseConfig.for_profile("quick")
    run = santurkar.Run("vgg", "bn", 0.1, 0)

    def make(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return santurkar.build_model(cfg, run)

    def project():
        model = make(0)   # chapters 7-8 keep NCHW on a CPU (channels_last only on CUDA)
        return model, torch.optim.SGD(model.parameters(), lr=run.lr)
    return conv_workload(make, cfg.batch_size, (2, 4), run.lr, 0.0, project, extras)


def mlp_workload() -> dict:
    """Chapter 04: the 784-100-100-100-10 sigmoid MLP with BN, batch 60; the chapter trains its
    18 networks (3 activations × BN or not × 3 seeds) as one StackedMLP."""
    cfg = mnist.MnistConfig.for_profile("full")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(cfg.batch_size, 784, generator=gen), torch.randint(0, 10, (cfg.batch_size,), generator=gen)
    net = mnist.build_nets(cfg, "sigmoid", 0)[True]
    out = {"torch": (sgd_step(net, torch.optim.SGD(net.parameters(), lr=0.1), F.cross_entropy, x, y), 1)}
    specs = [(a, bn, s) for a in cfg.activations for bn in (False, True) for s in cfg.seeds]
    stack = mnist.StackedMLP.from_models([mnist.build_nets(cfg, a, s)[bn] for a, bn, s in specs])
    n = len(specs)
    xs, ys = x.expand(n, -1, -1), y.expand(n, -1)
    params = list(stack.parameters())

    def project():   # train_stack's step: per-model losses, one autograd.grad, addcmul per tensor
        losses = mnist.per_model_loss(stack(xs), ys)
        grads = torch.autograd.grad(losses.sum(), params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is not None:
                    p.add_(g, alpha=-0.1)
    out[f"project (stack of {n})"] = (project, n)
    return out


def dln_workload(ks: tuple[int, ...] = (4,)) -> dict:
    """Chapters 07/08: the 25-layer width-10 deep linear network with BN, full batch of 1000."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1000, 10, generator=gen), torch.randn(1000, 10, generator=gen)

    def squared(out, target):
        return (out - target).pow(2).sum()

    def make(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return models.deep_linear(25, 10, norm="bn")
    net = make(0)
    out = {"torch": (sgd_step(net, torch.optim.SGD(net.parameters(), lr=1e-4), squared, x, y), 1)}
    net = make(0)
    out["project"] = (sgd_step(net, torch.optim.SGD(net.parameters(), lr=1e-4), squared, x, y), 1)
    for k in ks:
        net = stacked.stack([make(s) for s in range(k)])
        opt = StackedSGD(net.parameters(), k, lr=1e-4)
        xs, ys = x.repeat(1, k), y.repeat(1, k)
        out[f"stacked {k}"] = (sgd_step(net, opt, squared, xs, ys), k)
    return out


def examples_per_second(step: Step, batch: int, seconds: float, clock=time.perf_counter,
                        best: bool = False) -> float:
    """Return examples/s of ``step`` run for about ``seconds`` of ``clock`` (after two warm-up
    steps); ``best``: of its fastest step (the one least disturbed by other work)."""
    step(), step()
    times, t0 = [], clock()
    while clock() - t0 < seconds:
        t = clock()
        step()
        times.append(clock() - t)
    return batch / min(times) if best else len(times) * batch / (clock() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per variant per round")
    parser.add_argument("--only", default=None, help="run one workload (a name's start)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process' CPU time, steadier than wall time on a machine "
                             "busy with other work (use with --threads 1)")
    parser.add_argument("--best", action="store_true",
                        help="rate of the fastest step, not the mean (a busy machine's estimate "
                             "of an idle one)")
    parser.add_argument("--extras", action="store_true", help="also bf16 autocast, fused SGD")
    parser.add_argument("--compile", action="store_true",
                        help="also torch.compile (TinyInception with BN; minutes to compile)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    workloads = {
        "TinyInception w16 b32, BN (ch05)": (lambda: inception_workload(True, args.extras,
                                                                       args.compile), 32),
        "TinyInception w16 b32, no BN (ch05)": (lambda: inception_workload(False, args.extras), 32),
        "VGG-11 x1/8 b128, BN (ch07/08 quick)": (lambda: vgg_workload(args.extras), 128),
        "MLP 3x100 sigmoid+BN b60 (ch04)": (mlp_workload, 60),
        "DLN 25x10 + BN, batch 1000 (ch07/08)": (dln_workload, 1000),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
          f"{args.rounds} rounds of {args.seconds:g} s ({args.clock} clock) per variant, median "
          f"shown; rates are examples/s per trained model")
    for name, (build, batch) in workloads.items():
        if args.only and not name.lower().startswith(args.only.lower()):
            continue
        variants = build()
        rates = {v: [] for v in variants}
        for _ in range(args.rounds):
            for v, (step, k) in variants.items():
                rates[v].append(k * examples_per_second(step, batch, args.seconds, clock,
                                                        args.best))
        med = {v: statistics.median(r) for v, r in rates.items()}
        print(f"\n{name}")
        for v, rate in med.items():
            print(f"  {v:<24} {rate:>10.0f}/s   {rate / med['torch']:>5.2f}x torch")


if __name__ == "__main__":
    main()
