"""Pilots for choosing the ``reference`` profiles of chapters 05-08 (their notes quote the output).

Throughput is measured as CPU time per step of one thread (``time.process_time``), which a
neighbour's load disturbs much less than wall time does on a shared machine; an idle 2-core
machine with two threads runs about 1.6x one thread (the measurement of commit 47a7c0b), which is
what the estimates in the chapters' notes assume. The learning pilots train a few hundred steps
(VGG) or one epoch (TinyInception) at the candidate reference settings and print the curves.

    python benchmarks/reference_pilots.py speed            # TinyInception and VGG steps
    python benchmarks/reference_pilots.py vgg [--steps 300]   # chapter 07/08 learning pilot
    python benchmarks/reference_pilots.py inception       # chapter 05 learning pilot (1 epoch)
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from bn_utils.training import augment
from bn_utils.experiments import ch05_cifar_inception as inc
from bn_utils.experiments import ch07_santurkar_noise as noise
from bn_utils.experiments import santurkar


def cpu_seconds_per_step(model, batch, steps: int = 20, warm: int = 3, lr: float = 0.01) -> float:
    """Return the CPU seconds (one thread) of one SGD step of ``model`` on ``batch()``."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for i in range(warm + steps):
        if i == warm:
            t = time.process_time()
        x, y = batch()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.process_time() - t) / steps


def speed() -> dict:
    """Return images per CPU-second of TinyInception steps and VGG steps per CPU-second."""
    out = {}
    for width, bn, bs in [(16, True, 32), (16, False, 32)]:
        rc = inc.RunConfig(profile="custom", width=width, bn=bn, batch_size=bs)
        aug = augment.Augment(pad=4, flip=True, jitter=0.1, channels_last=True)
        x, y = torch.randint(0, 255, (bs, 32, 32, 3), dtype=torch.uint8), torch.randint(0, 10, (bs,))
        sec = cpu_seconds_per_step(inc.build_model(rc), lambda: (aug(x), y))
        out[f"tinyinception w{width} bn={bn} batch {bs}: images per cpu-second"] = bs / sec
    cfg = noise.NoiseConfig.for_profile("quick")
    x_tr, y_tr, _, _ = santurkar.cifar(cfg, "cpu")   # real images: random ones can hit slow denormals
    for vgg, width in [("vgg11", 0.125), ("vgg16", 0.25)]:
        for norm in ("none", "bn"):
            model = santurkar.build_model(
                cfg.replace(vgg=vgg, width=width), santurkar.Run("vgg", norm, 0.1, 0)
            )

            def batch():
                idx = torch.randint(0, len(x_tr), (128,))
                return x_tr[idx], y_tr[idx]
            out[f"{vgg} width {width} {norm} batch 128: cpu-seconds per step"] = \
                cpu_seconds_per_step(model, batch, steps=10, lr=0.1)
    return out


def vgg_pilot(steps: int) -> dict:
    """Return, for the standard and noisy-BN VGG-16 at width 0.25 on all images, the loss and
    accuracy curves of a short run and its CPU seconds per step (measurements off)."""
    out = {}
    cfg = noise.NoiseConfig.for_profile("reference", vgg_steps=steps, n_test=2000, eval_every=100,
                                        checkpoint_every=10**6)
    for norm in ("none", "noisy_bn"):
        t = time.process_time()
        r = santurkar.train_run("pilot", cfg, santurkar.Run("vgg", norm, 0.1, 0), lambda c, ctx: {})
        out[norm] = {"cpu_seconds_per_step": (time.process_time() - t) / steps,
                     "loss": [round(float(v), 3) for v in r["loss"]],
                     "train_batch_accuracy": [round(float(v), 3) for v in r["train_batch_accuracy"]],
                     "test_accuracy": [round(float(v), 3) for v in r["test_accuracy"]]}
    return out


def inception_pilot() -> dict:
    """Return one epoch of Inception and of BN-x30 at the reference settings: test accuracy at
    each evaluation and the CPU seconds of the epoch (evaluations included)."""
    out = {}
    cfg = inc.AblationConfig.for_profile("reference")
    for row in ("Inception", "BN-x30"):
        t = time.process_time()
        r = inc.train_run(cfg.run_config(row, 0, epochs=1))
        out[row] = {"cpu_seconds": time.process_time() - t, "eval_step": r["history"]["eval_step"],
                    "accuracy": [round(a, 4) for a in r["history"]["evals"]["accuracy"]]}
    return out


def main() -> None:
    """Run the pilot named on the command line with one torch thread; print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pilot", choices=("speed", "vgg", "inception"))
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {"speed": speed, "vgg": lambda: vgg_pilot(args.steps), "inception": inception_pilot}[args.pilot]()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
