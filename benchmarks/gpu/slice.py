"""Time a fixed slice of each ``full`` profile of chapters 05-08 and extrapolate the chapter's time.

For every network a chapter's ``full`` profile trains (chapter 05: one per row; chapter 06: its own
members, those chapter 05 does not train; chapters 07-08: one per architecture and norm), build it
exactly as the chapter does (chapter 05/06: TinyInception, bfloat16 autocast on CUDA, channels_last,
batched augmentation of uint8 images, momentum SGD with the lr schedule; chapters 07/08: VGG or the
deep linear network in float32, plain SGD, the chapter's loss), run ``warmup`` steps of
``train.fit``, then time ``steps`` more (one host synchronisation before and after, as the chapter
syncs only per logging interval). Reported per network: seconds per step, images per second and,
on CUDA, the peak memory (``torch.cuda.max_memory_allocated``); per chapter, the hours its
``full`` runs' training steps take at those rates. Not counted: evaluations, chapter 07/08's
measurements (given as passes beside the hours) and data loading, so the hours are a lower bound.

The data are random tensors of the chapter's shapes on the device (timing does not depend on the
pixels), so nothing is read from ``BN_DATA_DIR``.

    python benchmarks/gpu/slice.py [--device cuda] [--chapters 05,06,07,08] [--steps 200]
                                   [--warmup 20] [--profile full] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from bn_utils.training import augment, train
from bn_utils import data, runtime
from bn_utils.experiments import (
    ch06_ensemble as ensemble, ch05_cifar_inception as inc, ch07_santurkar_noise as noise,
    santurkar, ch08_santurkar_smoothness as smoothness)

CHAPTERS = ("05", "06", "07", "08")


@dataclass
class Network:
    """One network a chapter trains: how to build its training loop, and the steps it trains."""

    name: str
    batch_size: int
    make: Callable[[torch.device], dict]   # device -> train.fit keyword arguments
    runs: int = 0
    steps: int = 0                         # over every run of the profile that trains it
    extra: dict = field(default_factory=dict)


def _inception(rc: inc.RunConfig) -> Callable[[torch.device], dict]:
    """Return a builder of chapter 05's training loop for run ``rc`` (random uint8 images)."""

    def make(device: torch.device) -> dict:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # as train_run: fixed shapes
        model = inc.build_model(rc).to(device)
        net = train.Autocast(model, train.amp_dtype(device) if rc.amp else None)
        gen = torch.Generator().manual_seed(0)
        n = 16 * rc.batch_size
        x = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=gen).to(device)
        y = torch.randint(0, 10, (n,), generator=gen).to(device)
        aug = augment.Augment(pad=rc.pad, flip=rc.flip, jitter=rc.jitter,
                              channels_last=rc.channels_last)
        return {"model": net, "optimizer": inc.optimizer(model, rc), "lr_at": inc.lr_schedule(rc),
                "batches": augment.AugmentedBatches(data.batches(x, y, rc.batch_size, seed=0), aug),
                "log_every": max(1, rc.steps_per_epoch // 4)}
    return make


def _santurkar(cfg, run: santurkar.Run) -> Callable[[torch.device], dict]:
    """Return a builder of chapter 07/08's training loop for ``run`` (random data of its shapes)."""

    def make(device: torch.device) -> dict:
        runtime.seed_everything(run.seed)
        model = santurkar.build_model(cfg, run).to(device)
        gen = torch.Generator().manual_seed(0)
        if run.arch == "vgg":
            if device.type == "cuda":
                model = model.to(memory_format=torch.channels_last)
            n = 16 * cfg.batch_size
            x = torch.randn(n, 3, 32, 32, generator=gen).to(device)
            y = torch.randint(0, 10, (n,), generator=gen).to(device)
            batches, loss_fn, log_every = data.batches(x, y, cfg.batch_size, seed=run.seed), \
                santurkar.CountingLoss(), 50
        else:
            x, y = santurkar.dln_data(cfg, device)
            batches, loss_fn, log_every = itertools.repeat((x, y)), santurkar.squared_error, 10
        return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=run.lr),
                "loss_fn": loss_fn, "batches": batches, "log_every": log_every}
    return make


def networks(chapter: str, profile: str = "full") -> list[Network]:
    """Return the networks chapter ``chapter`` (05, 06, 07 or 08) trains at ``profile``, each with
    the number of runs and training steps that use it."""
    nets: dict[str, Network] = {}

    def add(key: str, batch: int, make, steps: int, **extra) -> None:
        net = nets.setdefault(key, Network(key, batch, make, extra=extra))
        net.runs += 1
        net.steps += steps
        for k, v in extra.items():
            net.extra[k] = net.extra.get(k, 0) + v if isinstance(v, (int, float)) else v

    if chapter == "05":
        for rc in inc.AblationConfig.for_profile(profile).runs():
            add(rc.row, rc.batch_size, _inception(rc), rc.steps)
    elif chapter == "06":
        cfg = ensemble.EnsembleConfig.for_profile(profile)
        for name in cfg.members:
            rc, stored_in = cfg.member(name)
            if stored_in == ensemble.CHAPTER:   # chapter 05's own seeds are trained there
                add(rc.row, rc.batch_size, _inception(rc), rc.steps)
    elif chapter in ("07", "08"):
        module, cls = (noise, noise.NoiseConfig) if chapter == "07" else \
            (smoothness, smoothness.SmoothnessConfig)
        cfg = cls.for_profile(profile)
        for run in module.runs(cfg):
            vgg = run.arch == "vgg"
            steps = cfg.vgg_steps if vgg else cfg.dln_steps
            every = cfg.measure_every if vgg else cfg.dln_measure_every
            add(f"{run.arch}_{run.norm}", cfg.batch_size if vgg else cfg.dln_examples,
                _santurkar(cfg, run), steps, measurements=len(santurkar.measure_steps(steps, every)))
    else:
        raise ValueError(f"chapter {chapter!r}: the slices cover {', '.join(CHAPTERS)}")
    return list(nets.values())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_network(net: Network, device: torch.device | str, *, steps: int, warmup: int) -> dict:
    """Return the rates of ``steps`` training steps of ``net`` after ``warmup`` (``train.fit``
    both times, the second timed between two synchronisations): seconds per step, images per
    second, and on CUDA the peak memory allocated in GiB."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps={steps} must be >= 1 and warmup={warmup} >= 0")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    kw = net.make(device)
    model, batches = kw.pop("model"), kw.pop("batches")
    if warmup:
        train.fit(model, batches, steps=warmup, progress=False, **kw)
    _sync(device)
    t1 = time.perf_counter()
    hist = train.fit(model, batches, steps=steps, progress=False, **kw)
    _sync(device)
    seconds = time.perf_counter() - t1
    out = {"batch_size": net.batch_size, "timed_steps": steps, "warmup_steps": warmup,
           "seconds_per_step": seconds / steps, "images_per_second": steps * net.batch_size / seconds,
           "setup_and_warmup_seconds": t1 - t0, "diverged": bool(hist.diverged),
           "peak_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                               if device.type == "cuda" else None)}
    del model, batches, kw
    return out


def slice_chapter(chapter: str, device: torch.device | str, *, steps: int, warmup: int,
                  profile: str = "full") -> dict:
    """Return each network's rates (:func:`time_network`) and the chapter's extrapolated hours:
    its ``profile`` runs' training steps at those rates (evaluations and measurements excluded)."""
    t0 = time.perf_counter()
    rows, total_s, total_steps = {}, 0.0, 0
    for net in networks(chapter, profile):
        rates = time_network(net, device, steps=steps, warmup=warmup)
        rows[net.name] = {**rates, "runs": net.runs, "profile_steps": net.steps, **net.extra,
                          "extrapolated_hours": net.steps * rates["seconds_per_step"] / 3600}
        total_s += net.steps * rates["seconds_per_step"]
        total_steps += net.steps
    return {"profile": profile, "networks": rows, "profile_steps": total_steps,
            "extrapolated_hours": total_s / 3600, "seconds": time.perf_counter() - t0,
            "counted": "training steps only (evaluations, measurements and data loading excluded)"}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print each chapter's rates (and write them as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=str(runtime.default_device()))
    parser.add_argument("--chapters", default=",".join(CHAPTERS))
    parser.add_argument("--profile", default="full")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (cuda 200, cpu 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (cuda 20, cpu 1)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {args.device}: no CUDA device here", file=sys.stderr)
        return 2
    cuda = device.type == "cuda"
    steps = args.steps if args.steps is not None else (200 if cuda else 2)
    warmup = args.warmup if args.warmup is not None else (20 if cuda else 1)
    out = {}
    for chapter in [c.strip() for c in args.chapters.split(",") if c.strip()]:
        res = out[chapter] = slice_chapter(chapter, device, steps=steps, warmup=warmup,
                                           profile=args.profile)
        print(f"chapter {chapter} ({args.profile}): {res['profile_steps']:,} training steps, "
              f"≈ {res['extrapolated_hours']:.2f} h of steps on {device} ({res['seconds']:.0f} s to time)")
        for name, r in res["networks"].items():
            mem = f", peak {r['peak_memory_gib']:.2f} GiB" if r["peak_memory_gib"] is not None else ""
            print(f"  {name:<24} {r['seconds_per_step'] * 1e3:9.2f} ms/step "
                  f"{r['images_per_second']:10.0f} images/s{mem}; {r['runs']} runs, "
                  f"{r['profile_steps']:,} steps ≈ {r['extrapolated_hours']:.2f} h")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
