"""Chapters 7 and 8 (Santurkar et al. 2018): what the two chapters share.

Two model families, as in the paper's Appendix A: a VGG on CIFAR-10 (SGD, batch 128, no
augmentation, Glorot initialisation) and a 25-layer deep linear network (DLN) of width 10 fitted
by full-batch gradient descent to ``y = A x`` on 1,000 Gaussian examples with a summed squared
loss. One training function runs either with a chapter's measurement hooks
(:func:`train_run`); :func:`sweep` stores every run as its own record (a killed sweep resumes
where it stopped, a killed long run from its checkpoint) and merges them into one record for the
chapter. The chapters' own parts are in ``noise/`` (chapter 7) and ``smoothness/`` (chapter 8).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..book import claims, plotting, results
from ..book.page import how_many, sig
from .. import data, runtime
from ..training import train
from ..nn import models
from ..nn.registry import norm_factory
from ..nn.variants import NORM_NAMES
from ..book.profiles import BATCH_MAX, EXAMPLES_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param

LABELS = {"none": "standard", "bn": "BN", "noisy_bn": "noisy BN", "noise": "standard + noise",
          "l1": "ℓ1 norm", "l2": "ℓ2 norm", "linf": "ℓ∞ norm"}
ARCHS = ("vgg", "dln")
# A network whose measurements over training are compared learned when, half-way through its
# training (the median measurement), its accuracy as trained was above twice chance (VGG) or
# its loss at most half its initial loss (DLN): a network still at its flat start there gives
# medians of a network that has not started to learn (chapter 7's standard VGG at LR 0.01 and
# chapter 8's at LR 0.5).
LEARNED_ACCURACY = 2 * data.CHANCE
LEARNED_LOSS = 0.5


@dataclass(frozen=True)
class SanturkarConfig(Config):
    """Fields both chapters share (defaults: the paper's protocol, the ``full`` profile)."""

    vgg: str = param("vgg16", "VGG configuration (vgg16: 13 conv layers + a linear classifier)",
                     choices=tuple(models.VGG_CONFIGS))
    width: float = param(1.0, "VGG width multiplier (1: 64 to 512 channels)", min=0.01, max=4.0)
    batch_size: int = param(128, "VGG minibatch size", min=2, max=BATCH_MAX)
    vgg_steps: int = param(15_000, "VGG SGD steps", min=1, max=STEPS_MAX)
    n_train: int = param(50_000, "CIFAR-10 training images (a class-stratified subset if fewer)",
                         min=128, max=50_000)
    n_test: int = param(10_000, "CIFAR-10 test images", min=100, max=10_000)
    train_probe: int = param(10_000, "training images the training accuracy is measured on",
                             min=100, max=50_000)
    eval_every: int = param(500, "VGG steps between accuracy evaluations", min=1, max=STEPS_MAX)
    measure_every: int = param(100, "VGG steps between measurements", min=1, max=STEPS_MAX)
    dln_depth: int = param(25, "DLN layers", min=2, max=1000)
    dln_width: int = param(10, "DLN width (and input/output dimension)", min=1, max=WIDTH_MAX)
    dln_examples: int = param(1000, "DLN examples (full batch)", min=2, max=EXAMPLES_MAX)
    dln_steps: int = param(10_000, "DLN gradient-descent steps", min=1, max=STEPS_MAX)
    dln_measure_every: int = param(100, "DLN steps between measurements", min=1, max=STEPS_MAX)
    seeds: tuple = param((0, 1, 2), "seeds (initialisation and minibatch order)", item_min=0, max=SEED_MAX)
    checkpoint_every: int = param(1000, "steps between checkpoints of a long run", min=1,
                                  max=STEPS_MAX)
    cpu_threads: int = param(0, "torch threads on a CPU (0: torch's default, fastest on an idle "
                                "machine; 1 is faster on cores busy with other work)", min=0,
                             max=1024)

    PROFILES: ClassVar[dict] = {"full": {}, "quick": {}, "smoke": {}}
    # Seeds a profile adds beyond its own, each run stored as its own record under the config
    # with that seed alone (``extra_configs``), so that the profile's records keep their digests.
    EXTRA_SEEDS: ClassVar[dict] = {}

    def extra_configs(self) -> list["SanturkarConfig"]:
        """Return the configs the extra seeds' runs are stored under: this one with ``seeds`` set
        to each seed of ``EXTRA_SEEDS`` for its profile that it does not run itself."""
        return [self.replace(seeds=(s,)) for s in self.EXTRA_SEEDS.get(self.profile, ()) if s not in self.seeds]

    def validate(self) -> None:
        """Check the subsets fit in the data they are drawn from."""
        if self.train_probe > self.n_train:
            raise ValueError(f"parameter train_probe={self.train_probe} must be <= n_train={self.n_train}")
        if self.batch_size > self.n_train:
            raise ValueError(f"parameter batch_size={self.batch_size} must be <= n_train={self.n_train}")

    def norm_kwargs(self, norm: str) -> dict:
        """Return the constructor arguments of a norm layer (the chapters add theirs)."""
        return {}


@dataclass(frozen=True)
class Run:
    """One training run: architecture, normalisation, learning rate and seed."""

    arch: str
    norm: str
    lr: float
    seed: int

    def __post_init__(self) -> None:
        if self.arch not in ARCHS or self.norm not in NORM_NAMES or not self.lr > 0:
            raise ValueError(f"bad run {self}: arch in {ARCHS}, norm in {NORM_NAMES}, lr > 0")

    @property
    def name(self) -> str:
        """Return the run's record name, e.g. ``vgg_bn_lr0.1_s0``."""
        return f"{self.group}_s{self.seed}"

    @property
    def group(self) -> str:
        """Return the name without the seed (runs that differ only by seed are averaged)."""
        return group(self.arch, self.norm, self.lr)


def group(arch: str, norm: str, lr: float) -> str:
    """Return the name of the runs of one network and learning rate, e.g. ``vgg_bn_lr0.1``."""
    return f"{arch}_{norm}_lr{lr:g}"


def cifar(cfg: SanturkarConfig, device) -> tuple:
    """Return ``(x_train, y_train, x_test, y_test)`` CIFAR-10 tensors (``data.device_tensors``:
    built once per process, shared)."""
    return data.device_tensors("cifar10", str(device), n_train=cfg.n_train, n_test=cfg.n_test)


def dln_data(cfg: SanturkarConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the DLN's data ``(x, A x)``: Gaussian inputs and a Gaussian 10x10 ``A`` (fixed seed,
    the same for every run)."""
    gen = torch.Generator().manual_seed(2018)
    x = torch.randn(cfg.dln_examples, cfg.dln_width, generator=gen)
    a = torch.randn(cfg.dln_width, cfg.dln_width, generator=gen)
    return x.to(device), (x @ a.T).to(device)


def squared_error(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return ``||out - target||²`` summed over the batch (the DLN's loss, as in the paper)."""
    return (out.float() - target.float()).pow(2).sum()


def build_model(cfg: SanturkarConfig, run: Run) -> nn.Module:
    """Return the freshly initialised network of ``run`` (seed the RNG first)."""
    dims = 2 if run.arch == "vgg" else 1
    norm = norm_factory(run.norm, dims, **cfg.norm_kwargs(run.norm))
    if run.arch == "vgg":
        return models.vgg(cfg.vgg, width=cfg.width, norm=norm)
    return models.deep_linear(cfg.dln_depth, cfg.dln_width, norm=norm)


def measure_steps(steps: int, every: int) -> list[int]:
    """Return the steps at which a run measures: 0, every, 2·every, ... (< steps)."""
    return list(range(0, steps, every))


@dataclass
class Context:
    """What a chapter's hooks may use: the model, its loss and a fixed probe batch."""

    run: Run
    model: nn.Module
    loss_fn: Callable
    probe_x: torch.Tensor
    probe_y: torch.Tensor
    steps: int


HookMaker = Callable[[SanturkarConfig, Context], dict]


class CountingLoss:
    """A loss that also counts the examples its (training-mode) outputs classify right: the
    accuracy of the network as it trains, noise and batch statistics included, on the batches it
    trains on. ``take()`` returns the accuracy since its last call (NaN if no batch since)."""

    def __init__(self, loss_fn: Callable = F.cross_entropy):
        self.loss_fn, self.correct, self.seen = loss_fn, None, 0

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Return ``loss_fn(out, y)``, counting the rows of ``out`` whose argmax is ``y``."""
        with torch.no_grad():   # a device-side sum: no synchronisation at every step
            hits = train.correct(out, y).sum()
            self.correct = hits if self.correct is None else self.correct + hits
            self.seen += len(y)
        return self.loss_fn(out, y)

    def take(self) -> float:
        """Return the accuracy over the batches scored since the last call, and start afresh."""
        acc = float(self.correct) / self.seen if self.seen else float("nan")
        self.correct, self.seen = None, 0
        return acc


def train_run(chapter: str, cfg: SanturkarConfig, run: Run, make_hooks: HookMaker) -> dict:
    """Train one network with the chapter's hooks; return its curves and measurements as NumPy
    arrays (``loss_step``, ``loss``, ``eval_step``, eval metrics, ``measure_step``, measures)."""
    device = runtime.default_device()
    runtime.seed_everything(run.seed)
    model = build_model(cfg, run).to(device)
    if run.arch == "vgg":
        x_tr, y_tr, x_te, y_te = cifar(cfg, device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        pick = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(1))
        px, py = x_tr[pick[: cfg.train_probe].to(device)], y_tr[pick[: cfg.train_probe].to(device)]
        probe_idx = pick[-cfg.batch_size:].to(device)   # a fixed batch for activation statistics
        batches = data.batches(x_tr, y_tr, cfg.batch_size, seed=run.seed)
        counting = CountingLoss()
        loss_fn, steps, log_every = counting, cfg.vgg_steps, 50

        def eval_fn(m: nn.Module) -> dict:
            # train_batch_accuracy: as the network trains (noise on), on the batches since the
            # last evaluation (the paper's training accuracy); train_accuracy: evaluation mode
            # (noise off, running statistics) on a fixed probe of training images
            test = train.evaluate(m, x_te, y_te)
            return {"train_batch_accuracy": counting.take(), "train_accuracy": train.accuracy(m, px, py),
                    "test_accuracy": test["accuracy"], "test_loss": test["loss"]}
        ctx = Context(run, model, F.cross_entropy, x_tr[probe_idx], y_tr[probe_idx], steps)
        eval_every = cfg.eval_every
    else:
        x, y = dln_data(cfg, device)
        batches = itertools.repeat((x, y))
        loss_fn, steps, log_every, eval_fn, eval_every = squared_error, cfg.dln_steps, 10, None, 0
        ctx = Context(run, model, loss_fn, x, y, steps)
    ckpt = results.checkpoint_path(chapter, run.name, cfg)
    hist = train.fit(model, batches, steps=steps, optimizer=torch.optim.SGD(model.parameters(), lr=run.lr),
                     loss_fn=loss_fn, eval_fn=eval_fn, eval_every=eval_every, log_every=log_every,
                     hooks=make_hooks(cfg, ctx), checkpoint=ckpt,
                     checkpoint_every=cfg.checkpoint_every, progress=run.name,
                     identity={"chapter": chapter, "name": run.name, "digest": cfg.digest()})
    ckpt.unlink(missing_ok=True)  # the record below holds everything the checkpoint did
    out = {"loss_step": np.array(hist.step), "loss": np.array(hist.loss, float),
           "eval_step": np.array(hist.eval_step), "measure_step": np.array(hist.measure_step),
           "diverged": hist.diverged, "seconds": hist.seconds}
    out.update({k: np.array(v, float) for k, v in hist.evals.items()})
    out.update({k: np.array(v, float) for k, v in hist.measures.items()})
    return out


def run_one(chapter: str, cfg: SanturkarConfig, run: Run, make_hooks: HookMaker) -> results.Record:
    """Return the stored record of one run under ``cfg`` (training it first if there is none)."""
    return results.load_or_run(chapter, run.name, cfg, lambda c: train_run(chapter, c, run, make_hooks))


def sweep(chapter: str, cfg: SanturkarConfig, runs: Sequence[Run], make_hooks: HookMaker) -> dict:
    """Run (or load) every run as its own record; return them merged as ``{"<run>/<key>": value}``."""
    merged: dict = {}
    for run in runs:
        rec = run_one(chapter, cfg, run, make_hooks)
        for key, value in {**rec.metrics, **rec.arrays}.items():
            merged[f"{run.name}/{key}"] = value
    return merged


def run_chapter(chapter: str, name: str, cfg: SanturkarConfig, runs: Callable, make_hooks: HookMaker,
                extra_runs: Callable) -> results.Record:
    """Return chapter 07's or 08's record ``name`` (at the unmodified quick profile: the best stored
    one, full, else reference), training and storing every run of ``runs(cfg)`` that is missing,
    with the stored runs of its extra seeds (``extra_runs(cfg)``, trained by tools/train_runs.py)
    merged in (:func:`with_extra_seeds`)."""
    with runtime.cpu_threads(cfg.cpu_threads):
        record = results.load_or_run(chapter, name, cfg,
                                     lambda c: sweep(chapter, c, runs(c), make_hooks), prefer_stored=True)
    return with_extra_seeds(record, extra_runs(type(cfg).from_record(record)))


def with_extra_seeds(record: results.Record, extra: Sequence[tuple[SanturkarConfig, Run]]) -> results.Record:
    """Return ``record`` with the stored runs of ``extra`` (the extra seeds' configs and runs)
    merged in as ``"<run>/<key>"`` (meta ``extra_runs`` names them); runs it holds already and
    runs not stored are left out; ``record`` itself when none is added. Each extra run is the
    chapter's protocol with another seed, loaded only under exactly its config."""
    have, added = set(unpack(record)), []
    metrics, arrays = dict(record.metrics), dict(record.arrays)
    for cfg, run in extra:
        if run.name in have:
            continue
        rec = results.load(record.chapter, run.name, cfg)
        if rec is None:
            continue
        added.append(run.name)
        metrics.update({f"{run.name}/{k}": v for k, v in rec.metrics.items()})
        arrays.update({f"{run.name}/{k}": v for k, v in rec.arrays.items()})
    if not added:
        return record
    return results.Record(record.chapter, record.name, record.config, metrics, arrays,
                          {**record.meta, "extra_runs": added}, record.path)


def unpack(record: results.Record) -> dict[str, dict]:
    """Return a chapter record as ``{run name: {key: value}}``."""
    out: dict[str, dict] = {}
    for key, value in {**record.metrics, **record.arrays}.items():
        if "/" in key:
            name, field = key.split("/", 1)
            out.setdefault(name, {})[field] = value
    return out


def seeds_of(runs: dict, group: str) -> list[dict]:
    """Return the runs (one per seed) whose name starts with ``group`` + ``_s``."""
    return [r for name, r in sorted(runs.items()) if name.rsplit("_s", 1)[0] == group]


def seeds_per_network(record: results.Record) -> list[int]:
    """Return the distinct numbers of seeds the record's networks have (extra seeds included
    once merged), smallest first: ``[1, 3]`` when some networks have one seed and others three."""
    runs = unpack(record)
    return sorted({len(seeds_of(runs, g)) for g in {name.rsplit("_s", 1)[0] for name in runs}})


def seeds_text(record: results.Record) -> str:
    """Return the record's seeds as a figure note says them: "3 seeds per network"."""
    return f"{how_many(seeds_per_network(record), 'seed')} per network"


def stacked(members: list[dict], key: str, x_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, seeds × points)`` of ``key`` over the seeds, NaN-padded where a run stopped
    early (diverged)."""
    series = [np.asarray(m[key], float) for m in members if key in m]
    if not series:
        return np.array([]), np.zeros((0, 0))
    longest = max(range(len(series)), key=lambda i: len(series[i]))
    x = np.asarray([m for m in members if key in m][longest][x_key], float)[: len(series[longest])]
    ys = np.full((len(series), len(x)), np.nan)
    for i, s in enumerate(series):
        ys[i, : len(s)] = s[: len(x)]
    return x, ys


def plot_curve(ax, runs: dict, group: str, key: str, x_key: str, *, label: str, color=None,
               column: int | None = None, kind: str = "std") -> bool:
    """Plot ``key`` of a run group over ``x_key`` (mean with a band over seeds); return whether
    there was anything to plot. ``column`` picks one column of a 2-D measure."""
    members = seeds_of(runs, group)
    if column is not None:
        members = [{**m, key: np.asarray(m[key])[:, column]} for m in members if key in m]
    x, ys = stacked(members, key, x_key)
    if ys.size == 0:
        return False
    plotting.band(ax, x, ys, label=label, color=color, kind=kind)
    return True


def last_finite(m: dict, key: str) -> float:
    """Return the last finite value of ``key`` in one run (NaN if none)."""
    v = np.asarray(m.get(key, []), float)
    v = v[np.isfinite(v)]
    return float(v[-1]) if v.size else float("nan")


def halfway(m: dict, key: str, x_key: str) -> float:
    """Return ``key`` of one run at its finite measurement nearest the middle of its steps."""
    x, v = np.asarray(m.get(x_key, []), float), np.asarray(m.get(key, []), float)
    n = min(len(x), len(v))
    ok = np.flatnonzero(np.isfinite(v[:n]))
    if not ok.size:
        return float("nan")
    mid = (x[0] + x[n - 1]) / 2
    return float(v[ok[np.argmin(np.abs(x[ok] - mid))]])


def learned(members: list[dict], arch: str) -> bool:
    """Return whether the runs of one network (its seeds) learned, as a claim comparing its
    measurements over training needs: none diverged, and half-way through training the seeds'
    mean accuracy as trained was above ``LEARNED_ACCURACY`` (VGG) or their mean loss at most
    ``LEARNED_LOSS`` of the initial loss (DLN)."""
    if not members or any(bool(m.get("diverged")) for m in members):
        return False
    if arch == "vgg":
        acc = [halfway(m, "train_batch_accuracy", "eval_step") for m in members]
        return claims.learned(acc, data.CHANCE, LEARNED_ACCURACY - data.CHANCE)
    share = [halfway(m, "loss", "loss_step") / float(np.asarray(m["loss"], float)[0]) for m in members]
    return bool(np.mean(share) <= LEARNED_LOSS)


def per_seed(runs: dict, group: str, fn: Callable[[dict], float]) -> dict[int, float]:
    """Return ``{seed: fn(run)}`` over the runs of a group."""
    return {int(name.rsplit("_s", 1)[1]): float(fn(m)) for name, m in sorted(runs.items())
            if name.rsplit("_s", 1)[0] == group}


def spread(d: claims.Decision, unit: str = "", seeds: bool = True) -> str:
    """Return a decision's difference as text with three significant digits (the quantities of
    chapters 7 and 8 span many orders of magnitude): ``"+0.123 ± 0.045, 3 seeds"`` (without the
    seeds when ``seeds`` is false)."""
    if not np.isfinite(d.mean):
        return "—"
    se = f" ± {sig(d.se, 2)}" if np.isfinite(d.se) else ""
    n = f", {d.n} seed{'' if d.n == 1 else 's'}" if seeds else ""
    return f"{sig(d.mean, sign=True)}{se}{' ' + unit if unit else ''}{n}"


def final(runs: dict, group: str, key: str) -> tuple[float, float]:
    """Return mean and std over seeds of the last finite value of ``key`` in a run group."""
    values = []
    for m in seeds_of(runs, group):
        v = np.asarray(m.get(key, []), float)
        v = v[np.isfinite(v)]
        values.append(v[-1] if v.size else np.nan)
    return (float(np.mean(values)), float(np.std(values))) if values else (np.nan, np.nan)


def fmt_pm(mean: float, std: float, n: int, digits: int = 3, significant: bool = False) -> str:
    """Return ``mean ± std`` (or just the mean for one seed) as text: ``digits`` decimals, or
    with ``significant`` that many significant digits (a loss in the thousands: ``8,900 ± 2,100``)."""
    if not np.isfinite(mean):
        return "diverged"
    text = (lambda x: sig(x, digits)) if significant else (lambda x: f"{x:.{digits}f}")
    return text(mean) + (f" ± {text(std)}" if n > 1 else "")
