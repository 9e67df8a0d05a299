"""Chapters 7-8 on a CPU: seconds per SGD step of the quick profile's VGG-11 (width 1/8, batch
128) and of the 25-layer deep linear network with BN, with 1 torch thread and with torch's
default. Prints the ratios behind the ``cpu_threads=1`` default of ``SanturkarConfig``: on an
idle 2-core machine two threads made the VGG step ~1.7x faster (the DLN no faster), but on the
same cores shared with other jobs (load average 5-8) two threads were 5-10x *slower* than one,
so one thread is the choice that keeps the quick profile within its budget in both cases."""

import time

import torch
import torch.nn.functional as F

from bn_utils.nn import models


def seconds_per_step(model, x, y, loss_fn, threads: int, steps: int = 15) -> float:
    """Return the median seconds of one SGD step with ``threads`` torch threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    times = []
    try:
        for i in range(steps + 3):
            t = time.perf_counter()
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i >= 3:
                times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(old)
    return sorted(times)[len(times) // 2]


def main() -> None:
    torch.manual_seed(0)
    default = torch.get_num_threads()
    cases = {
        "VGG-11 x 1/8, batch 128": (models.vgg("vgg11", width=0.125, norm="bn"),
                                    torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,)),
                                    F.cross_entropy),
        "DLN 25x10 + BN, batch 1000": (models.deep_linear(25, 10, norm="bn"), torch.randn(1000, 10),
                                       torch.randn(1000, 10), lambda out, y: (out - y).pow(2).sum()),
    }
    for name, (model, x, y, loss_fn) in cases.items():
        one = seconds_per_step(model, x, y, loss_fn, 1)
        many = seconds_per_step(model, x, y, loss_fn, default)
        print(f"{name}: {one * 1e3:.1f} ms/step with 1 thread, {many * 1e3:.1f} ms with {default}; "
              f"ratio {default} threads / 1 thread = {many / one:.2f}")


if __name__ == "__main__":
    main()
