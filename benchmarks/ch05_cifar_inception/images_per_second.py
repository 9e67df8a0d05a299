"""Images per second of one TinyInception training step on the CPU: with and without BN,
channels_last vs NCHW memory, at the paper's batch of 32 and at 128; then the operators one step
dispatches, and what that means for the full profile on a GPU.

Each step is the whole thing chapter 05 times: batched augmentation of uint8 images (crop, flip,
colour jitter, normalisation), forward, cross-entropy, backward, momentum SGD. The variants run
interleaved, in rounds, and we print the median, so that a neighbour's load on a shared machine
hits them all alike; ratios are the numbers to read.

    python benchmarks/ch05_cifar_inception/images_per_second.py [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bn_utils.training import augment
from bn_utils.experiments import ch05_cifar_inception as inc


def make_step(bn: bool, channels_last: bool, batch: int, *, foreach: bool | None = None):
    """Return a function that runs one training step of a fresh TinyInception (``foreach``:
    the optimizer's multi-tensor mode, which torch picks on GPUs)."""
    rc = inc.RunConfig(bn=bn, dropout=0.0 if bn else 0.4, channels_last=channels_last,
                       batch_size=batch, n_train=4096, n_test=100, epochs=1)
    model = inc.build_model(rc)
    opt = inc.optimizer(model, rc)
    if foreach is not None:
        for group in opt.param_groups:
            group["foreach"] = foreach
    aug = augment.Augment(jitter=0.1, channels_last=channels_last)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 32, 32, 3), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)

    def step():
        xb = aug(x)
        loss = F.cross_entropy(model(xb), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def images_per_second(step, batch: int, seconds: float) -> float:
    """Return images/s of ``step`` run for about ``seconds`` (after two warm-up steps)."""
    step(), step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


VIEWS = {"aten::empty", "aten::empty_strided", "aten::view", "aten::as_strided", "aten::t",
         "aten::transpose", "aten::detach", "aten::permute", "aten::expand", "aten::slice",
         "aten::select", "aten::unsqueeze", "aten::reshape", "aten::_reshape_alias", "aten::alias",
         "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg", "aten::empty_like",
         "aten::_unsafe_view", "aten::squeeze", "aten::unbind", "aten::split", "aten::narrow"}


def ops_per_step(step) -> int:
    """Return how many aten operators one training step dispatches from Python or autograd
    (not counting the operators they call, views or allocations): on a GPU in eager mode each is
    one to a few kernel launches, and for a net this small the launches set the pace."""
    from torch.profiler import ProfilerActivity, profile

    def top_level(event) -> bool:
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        return parent is None

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(1 for e in prof.events()
               if e.name.startswith("aten::") and e.name not in VIEWS and top_level(e))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per variant per round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), "
          f"{args.rounds} rounds of {args.seconds:.0f} s per variant (median shown)")
    variants = [(batch, bn, cl) for batch in (32, 128) for bn in (True, False) for cl in (True, False)]
    steps = {v: make_step(v[1], v[2], v[0]) for v in variants}
    speed = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            speed[v].append(images_per_second(steps[v], v[0], args.seconds))
    med = {v: statistics.median(s) for v, s in speed.items()}
    print(f"\n{'batch':>5} {'BN':>4} {'memory':>14} {'images/s':>9}")
    for (batch, bn, cl), ips in med.items():
        print(f"{batch:>5} {'yes' if bn else 'no':>4} {'channels_last' if cl else 'NCHW':>14} {ips:>9.0f}")
    print("\nratios (same batch):")
    for batch in (32, 128):
        print(f"  batch {batch:>3}: BN / no BN (channels_last) = "
              f"{med[(batch, True, True)] / med[(batch, False, True)]:.2f}; "
              f"channels_last / NCHW: with BN {med[(batch, True, True)] / med[(batch, True, False)]:.2f}, "
              f"without {med[(batch, False, True)] / med[(batch, False, False)]:.2f}")

    ops = ops_per_step(make_step(True, True, 32, foreach=True))
    full = inc.AblationConfig.for_profile("full")
    table_steps = inc.planned_steps(full)
    from bn_utils.experiments import ch06_ensemble as ens

    ecfg = ens.EnsembleConfig.for_profile("full")
    extra = sum(ecfg.member(m)[0].steps for m in ecfg.members if ecfg.member(m)[1] == ens.CHAPTER)
    print(f"\none BN training step at batch 32 dispatches {ops} aten operators "
          f"(multi-tensor SGD, as on a GPU; autocast adds a few casts there)")
    print(f"full profile: {table_steps:,} steps (chapter 05) + {extra:,} (chapter 06's new members)")
    for us in (5, 10):
        minutes = (table_steps + extra) * ops * us * 1e-6 / 60
        print(f"  if launch-bound (the net is tiny) at {us:>2} µs of host time per operator: "
              f"≈ {minutes:.0f} min on one GPU")
    cpu = med[(32, True, True)]
    print(f"  on this CPU at {cpu:.0f} images/s: ≈ {(table_steps + extra) * 32 / cpu / 3600:.0f} h")


if __name__ == "__main__":
    main()
