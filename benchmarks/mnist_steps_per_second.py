"""Steps per second of the chapter-04 MNIST networks: one plain PyTorch loop per network against
all networks trained together as one StackedMLP (what the chapter uses). Prints measured rates
and their ratio, from one process (so contention on a shared machine affects both alike).

    python benchmarks/mnist_steps_per_second.py [--steps 300] [--threads N]
"""

import argparse
import time

import torch
import torch.nn.functional as F

from bn_utils import data, train
from bn_utils.experiments import mnist


def plain_rate(cfg, x, y, activation: str, bn: bool, steps: int) -> float:
    """Return steps/s of one network trained by an ordinary loop (nn modules, torch SGD)."""
    net = mnist.build_nets(cfg, activation, 0)[bn]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    batches = data.batches(x, y, cfg.batch_size, seed=0)

    def step():
        xb, yb = next(batches)
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def stacked_rate(cfg, x, y, specs, steps: int) -> float:
    """Return model-steps/s (steps/s times the number of networks) of a StackedMLP."""
    nets = [mnist.build_nets(cfg, a, s)[bn] for a, bn, s in specs]
    stack = mnist.StackedMLP.from_models(nets)
    seeds = [s for *_, s in specs]
    mnist.train_stack(stack, x, y, seeds, steps=20, batch_size=cfg.batch_size, lr=0.1)
    t0 = time.perf_counter()
    mnist.train_stack(stack, x, y, seeds, steps=steps, batch_size=cfg.batch_size, lr=0.1)
    return len(specs) * steps / (time.perf_counter() - t0)


def eval_seconds(cfg, x_te, y_te, specs) -> tuple[float, float]:
    """Return seconds to evaluate every network on the test set: one by one, and stacked."""
    nets = [mnist.build_nets(cfg, a, s)[bn] for a, bn, s in specs]
    stack = mnist.StackedMLP.from_models(nets).eval()
    t0 = time.perf_counter()
    for net in nets:
        train.evaluate(net, x_te, y_te)
    one_by_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode():
        mnist.evaluate_stack(stack, x_te, y_te, cfg.probe_units)
    return one_by_one, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = mnist.MnistConfig.for_profile("full")
    x, y, x_te, y_te = mnist.load_data(cfg)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps each")
    rates = {}
    for bn in (False, True):
        rates[bn] = plain_rate(cfg, x, y, "sigmoid", bn, args.steps)
        print(f"plain loop, sigmoid {mnist.LABELS[bn]:>10}: {rates[bn]:7.0f} steps/s")
    plain_mean = 2 / (1 / rates[False] + 1 / rates[True])   # half the nets have BN
    full = [(a, bn, s) for a in cfg.activations for bn in (False, True) for s in cfg.seeds]
    for name, specs in (("one seed, 3 activations x 2", [t for t in full if t[2] == 0]),
                        ("the full profile's 18 networks", full)):
        rate = stacked_rate(cfg, x, y, specs, max(20, args.steps // len(specs) * 3))
        print(f"stacked, {name} ({len(specs)} nets): {rate:7.0f} model-steps/s, "
              f"{rate / plain_mean:.2f}x the plain loop")
        if len(specs) == len(full):
            total = len(full) * cfg.steps / rate
            print(f"  -> the full profile's main runs ({len(full)} x {cfg.steps} steps) would "
                  f"train in {total / 60:.1f} min at this rate (plain loop: "
                  f"{len(full) * cfg.steps / plain_mean / 60:.1f} min)")
    one, stacked = eval_seconds(cfg, x_te, y_te, full)
    print(f"evaluating {len(full)} nets on {len(x_te)} test images: {one:.2f} s one by one, "
          f"{stacked:.2f} s stacked (with percentiles), {one / stacked:.2f}x")


if __name__ == "__main__":
    main()
