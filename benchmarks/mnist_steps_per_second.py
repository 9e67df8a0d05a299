"""Steps per second of chapter 04's MNIST networks: the project's path (every network of the
full profile's main runs trained together as one ``StackedMLP`` by ``mnist.train_stack``, i.e.
``train.fit``) against a plain PyTorch loop (the same 18 networks as ordinary ``nn.Sequential``
MLPs, each with its own ``torch.optim.SGD``, one step of each in turn). The two are measured
interleaved in one process, in rounds, so that a busy machine slows both alike; the rates are
model-steps per CPU-second (``time.process_time``, what contention inflates least) and per
wall-second. Prints both rates, their ratio, and the full profile's main runs (18 x 50,000
steps) extrapolated from the project's rate; then the floor that the matrix products alone set:
the main runs' multiply-adds at the rate this CPU reaches on the first layer's products (most of
the arithmetic), and at the rate of one large matrix product.

    python benchmarks/mnist_steps_per_second.py [--steps 60] [--rounds 5] [--threads N]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bn_utils import data
from bn_utils.experiments import ch04_mnist as mnist

LR = 0.01   # small enough that no network diverges during the measurement


def networks(cfg) -> tuple[list, list]:
    """Return the full profile's main-run networks and their seeds (activation x BN x seed)."""
    specs = [(a, bn, s) for a in cfg.activations for bn in (False, True) for s in cfg.seeds]
    return [mnist.build_nets(cfg, a, s)[bn] for a, bn, s in specs], [s for *_, s in specs]


def plain_loop(nets, seeds, x, y, batch_size):
    """Return a function that runs ``steps`` SGD steps of every net, one after the other."""
    opts = [torch.optim.SGD(n.parameters(), lr=LR) for n in nets]
    streams = [data.batches(x, y, batch_size, seed=s) for s in seeds]

    def run(steps: int) -> None:
        for _ in range(steps):
            for net, opt, stream in zip(nets, opts, streams):
                xb, yb = next(stream)
                loss = F.cross_entropy(net(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return run


def project_loop(nets, seeds, x, y, batch_size):
    """Return a function that runs ``steps`` steps of the stack of ``nets`` (mnist.train_stack)."""
    stack = mnist.StackedMLP.from_models(nets)

    def run(steps: int) -> None:
        mnist.train_stack(stack, x, y, seeds, steps=steps, batch_size=batch_size, lr=LR)
    return run


def measure(runs: dict, steps: int, rounds: int, n_models: int) -> dict:
    """Return per name the median model-steps per CPU-second and per wall-second over
    ``rounds`` interleaved rounds of ``steps`` steps each."""
    cpu, wall = {k: [] for k in runs}, {k: [] for k in runs}
    for run in runs.values():
        run(5)   # warm-up: allocations, first-call overheads
    for _ in range(rounds):
        for name, run in runs.items():
            c0, w0 = time.process_time(), time.perf_counter()
            run(steps)
            cpu[name].append(n_models * steps / (time.process_time() - c0))
            wall[name].append(n_models * steps / (time.perf_counter() - w0))
    return {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in runs}


def flops_per_model_step(cfg) -> float:
    """Return the floating-point operations of one SGD step of one MLP: per layer the forward
    product and the weight gradient, and the input gradient for every layer above the first."""
    widths = (784, *cfg.hidden, 10)
    return sum((2 if i == 0 else 3) * 2 * cfg.batch_size * a * b
               for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))


def gflops_per_cpu_second(fn, flops: float, n: int) -> float:
    """Return the GFLOP per CPU-second of ``fn`` (``flops`` each call), over ``n`` calls."""
    fn()
    t = time.process_time()
    for _ in range(n):
        fn()
    return flops * n / (time.process_time() - t) / 1e9


def matmul_floor(cfg, n_models: int) -> None:
    """Print the main runs' arithmetic and the minutes its matrix products alone need here."""
    batch, (first, *_) = cfg.batch_size, cfg.hidden
    x, w = torch.rand(n_models, batch, 784), torch.randn(n_models, first, 784)
    layer1 = gflops_per_cpu_second(lambda: torch.bmm(x, w.transpose(1, 2)),
                                   2 * n_models * batch * 784 * first, 200)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    large = gflops_per_cpu_second(lambda: a @ b, 2 * 1024 ** 3, 20)
    total = flops_per_model_step(cfg) * n_models * cfg.steps
    cores = torch.get_num_threads()
    print(f"main runs: {total / 1e12:.1f} TFLOP of matrix products; this CPU: {layer1:.0f} GFLOP "
          f"per CPU-second on the first layer's products, {large:.0f} on a 1024^3 product")
    for name, rate in (("first-layer rate", layer1), ("large-product rate", large)):
        print(f"  floor at the {name} on {cores} thread(s), if they scaled perfectly: "
              f"{total / (rate * 1e9 * cores) / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = mnist.MnistConfig.for_profile("full")
    x, y, _, _ = mnist.load_data(cfg)
    nets, seeds = networks(cfg)
    plain_nets, _ = networks(cfg)
    runs = {"plain PyTorch loop": plain_loop(plain_nets, seeds, x, y, cfg.batch_size),
            "project (StackedMLP, train.fit)": project_loop(nets, seeds, x, y, cfg.batch_size)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(nets)} networks, "
          f"{args.rounds} interleaved rounds of {args.steps} steps")
    rates = measure(runs, args.steps, args.rounds, len(nets))
    for name, (cpu, wall) in rates.items():
        print(f"{name:32s} {cpu:7.0f} model-steps per CPU-second, {wall:7.0f} per wall-second")
    (plain_cpu, plain_wall), (ours_cpu, ours_wall) = rates.values()
    print(f"ratio project / plain: {ours_cpu / plain_cpu:.2f}x (CPU time), "
          f"{ours_wall / plain_wall:.2f}x (wall time)")
    total = len(nets) * cfg.steps
    print(f"full profile's main runs ({len(nets)} x {cfg.steps} steps, training only) at the "
          f"project's rate: {total / ours_wall / 60:.1f} min wall, {total / ours_cpu / 60:.1f} "
          f"CPU-min (plain loop: {total / plain_wall / 60:.1f} min wall)")
    matmul_floor(cfg, len(nets))


if __name__ == "__main__":
    main()
