"""How much slower is the from-scratch BN than torch's fused kernel? Prints measured ratios.

Run: .venv/bin/python benchmarks/norms_speed.py   (CPU, or CUDA when available)
"""

import time

import torch

from bn_utils.nn import norms
from bn_utils.runtime import default_device


def median_ms(fn, repeats=30):
    """Return the median wall time of fn() in milliseconds (after one warm-up call)."""
    fn()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def main():
    device = default_device()
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'layer':>12} {'input':>18} {'mode':>6} {'torch ms':>9} {'ours ms':>9} {'ours/torch':>10}")
    cases = [(norms.BatchNorm1d, torch.nn.BatchNorm1d, (60, 100)),
             (norms.BatchNorm1d, torch.nn.BatchNorm1d, (256, 4096)),
             (norms.BatchNorm2d, torch.nn.BatchNorm2d, (128, 64, 32, 32))]
    for ours_cls, torch_cls, shape in cases:
        x = torch.randn(shape, device=device, requires_grad=True)
        for mode in ("train", "eval"):
            layers = [cls(shape[1]).to(device).train(mode == "train") for cls in (torch_cls, ours_cls)]

            def step(layer):
                out = layer(x)
                if mode == "train":
                    out.sum().backward()

            t_torch, t_ours = (median_ms(lambda layer=layer: step(layer)) for layer in layers)
            print(f"{ours_cls.__name__:>12} {'x'.join(map(str, shape)):>18} {mode:>6} "
                  f"{t_torch:9.3f} {t_ours:9.3f} {t_ours / t_torch:10.2f}")


if __name__ == "__main__":
    main()
