"""Chapter 05: Ioffe & Szegedy's Inception ablations (their Figures 2 and 3), on CIFAR-10.

Five rows, one network (:class:`bn_utils.inception_net.TinyInception`), momentum SGD::

    Inception       no BN, lr 0.0015, dropout 0.4
    BN-Baseline     BN before every nonlinearity, lr 0.0015, dropout 0.4 (Inception + BN)
    BN-x5           BN, lr x5,  the paper's modifications
    BN-x30          BN, lr x30, the paper's modifications
    BN-x5-Sigmoid   BN, lr x5,  the paper's modifications, sigmoid instead of ReLU

plus two sanity rows without BN: ``Inception-x30`` (BN-x30's recipe, which may diverge) and
``Inception-x5-Sigmoid`` (BN-x5-Sigmoid's; the paper reports that sigmoid Inception without BN
stays at chance accuracy).
"The paper's modifications" (their Sec. 4.2.1) are: no dropout, L2 weight decay / 5, learning-rate
decay 6x faster, fewer photometric distortions; their other two (no local response normalisation,
thorough shuffling) hold for every row here, since TinyInception has no LRN and every run
reshuffles all of its training set each epoch.

Every (row, seed) is one training run with its own stored record (``load_or_run`` of a
:class:`RunConfig`), holding its history and its final test-set logits (float16), so a killed sweep
resumes where it stopped (each run also checkpoints every epoch) and chapter 06 builds its ensemble
from chapter 05's BN-x30 runs instead of training them again.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import augment, data, inception_net, plotting, results, train
from ..profiles import SEED_MAX, Config, param

CHAPTER = "05_cifar_inception"
PAPER_BATCH = 32          # the paper's minibatch size; learning rates below are for it
BASE_LR = 0.0015          # Inception's initial learning rate in the paper


@dataclass(frozen=True)
class Row:
    """One row of the ablation table: what differs from Inception."""

    bn: bool
    lr_mult: float
    activation: str = "relu"
    dropout: float = 0.0
    accelerated: bool = False      # the paper's modifications (Sec. 4.2.1)
    note: str = ""


ROWS: dict[str, Row] = {
    "Inception": Row(bn=False, lr_mult=1, dropout=0.4, note="no BN, dropout 0.4"),
    # the paper's BN-Baseline is "Inception with BN": it keeps dropout (removing dropout is one of
    # the Sec. 4.2.1 modifications, which only the accelerated rows take)
    "BN-Baseline": Row(bn=True, lr_mult=1, dropout=0.4, note="Inception + BN, dropout 0.4 kept"),
    "BN-x5": Row(bn=True, lr_mult=5, accelerated=True, note="lr x5, modifications"),
    "BN-x30": Row(bn=True, lr_mult=30, accelerated=True, note="lr x30, modifications"),
    "BN-x5-Sigmoid": Row(bn=True, lr_mult=5, activation="sigmoid", accelerated=True,
                         note="sigmoid instead of ReLU, lr x5, modifications"),
    "Inception-x30": Row(bn=False, lr_mult=30, accelerated=True,
                         note="sanity row: BN-x30 without BN (may diverge)"),
    "Inception-x5-Sigmoid": Row(bn=False, lr_mult=5, activation="sigmoid", accelerated=True,
                                note="sanity row: BN-x5-Sigmoid without BN"),
}
SANITY_ROWS = ("Inception-x30", "Inception-x5-Sigmoid")
ABLATION_ROWS = tuple(r for r in ROWS if r not in SANITY_ROWS)
TARGET_ROW = "Inception"   # steps are counted to this row's best accuracy
CHANCE = 0.1               # accuracy of guessing one of CIFAR-10's ten classes
CHANCE_MARGIN = 0.05       # a target below CHANCE + this is chance level: no steps, no speed-up

# Ioffe & Szegedy (2015), Figure 3 (ImageNet, Inception): steps to reach Inception's 72.2 %
# top-1 validation accuracy, and the best accuracy reached. None: never reached. The paper's
# speed-ups (e.g. BN-x5's 14.8x) are computed from these by paper_speedups(), never typed.
PAPER = {
    "Inception": {"steps": 31.0e6, "max_accuracy": 72.2},
    "BN-Baseline": {"steps": 13.3e6, "max_accuracy": 72.7},
    "BN-x5": {"steps": 2.1e6, "max_accuracy": 73.0},
    "BN-x30": {"steps": 2.7e6, "max_accuracy": 74.8},
    "BN-x5-Sigmoid": {"steps": None, "max_accuracy": 69.8},
}
# The student reproduction on CIFAR-10 with a TinyInception (numbers as given in the book's
# issue): best test accuracy (%) and epochs to reach the Inception row's best accuracy.
STUDENT = {
    "Inception": {"max_accuracy": 57.77, "epochs": 99},
    "BN-Baseline": {"max_accuracy": 68.47, "epochs": 13},
    "BN-x5": {"max_accuracy": 68.0, "epochs": 7},
    "BN-x30": {"max_accuracy": 73.0, "epochs": 4},
    "BN-x5-Sigmoid": {"max_accuracy": 55.92, "epochs": None},
}


@dataclass(frozen=True)
class RunConfig(Config):
    """One training run, fully resolved: what a (row, seed) of the table trains with."""

    row: str = param("BN-x30", "the ablation row this run belongs to (a label)")
    bn: bool = param(True, "BatchNorm before every nonlinearity")
    activation: str = param("relu", "nonlinearity", choices=("relu", "sigmoid"))
    lr: float = param(0.045, "initial learning rate", min=1e-6, max=1e4)
    momentum: float = param(0.9, "SGD momentum", min=0.0, max=0.999)
    weight_decay: float = param(1e-4, "L2 weight decay (conv and linear weights)", min=0.0)
    lr_decay: float = param(0.96, "learning-rate factor per decay period", min=0.01, max=1.0)
    decay_epochs: float = param(8 / 6, "epochs per decay period", min=1e-3)
    dropout: float = param(0.0, "dropout before the classifier", min=0.0, max=0.9)
    final_bn: bool = param(False, "per-activation BN on the pooled features")
    init_gain: float = param(1.0, "factor on the initial conv weights", min=0.01, max=100.0)
    jitter: float = param(0.1, "colour-jitter strength (0: none)", min=0.0, max=0.9)
    pad: int = param(4, "random-crop padding in pixels (0: no crop)", min=0, max=16)
    flip: bool = param(True, "random horizontal flips")
    epochs: int = param(30, "training epochs", min=1)
    batch_size: int = param(32, "examples per minibatch", min=2)
    width: int = param(16, "TinyInception base width (16: 16→48→48 channels)", min=2)
    five: str = param("double3x3", "the 5x5 branch", choices=inception_net.FIVES)
    n_train: int = param(50_000, "training images (class-stratified subset)", min=64, max=50_000)
    n_test: int = param(10_000, "test images (class-stratified subset)", min=10, max=10_000)
    evals_per_epoch: int = param(1, "test-set evaluations per epoch", min=1)
    dense_evals_per_epoch: int = param(0, "extra test-set evaluations per epoch over the first "
                                          "dense_epochs (where the fast rows cross the target)", min=0)
    dense_epochs: float = param(2.0, "epochs with dense evaluations", min=0.0)
    channels_last: bool = param(True, "channels_last memory for the conv net")
    amp: bool = param(True, "bfloat16 autocast on GPUs that support it (BN stays float32)")
    seed: int = param(0, "seed of initialisation, shuffling, augmentation and dropout", min=0, max=SEED_MAX)

    def validate(self) -> None:
        """Check that width is even and an epoch holds at least one eval interval."""
        if self.width % 2:
            raise ValueError(f"parameter width={self.width} must be even")
        if self.batch_size > self.n_train:
            raise ValueError(f"parameter batch_size={self.batch_size} exceeds n_train={self.n_train}")
        if self.evals_per_epoch > self.steps_per_epoch:
            raise ValueError(f"parameter evals_per_epoch={self.evals_per_epoch} exceeds the "
                             f"{self.steps_per_epoch} steps of an epoch")

    @property
    def steps_per_epoch(self) -> int:
        """Return the SGD steps of one pass over the training set (last partial batch dropped)."""
        return self.n_train // self.batch_size

    @property
    def steps(self) -> int:
        """Return the run's total SGD steps."""
        return self.epochs * self.steps_per_epoch

    @property
    def name(self) -> str:
        """Return the record name of this run (row and seed)."""
        return f"{self.row}_s{self.seed}"


@dataclass(frozen=True)
class AblationConfig(Config):
    """The ablation table (defaults: the ``full`` profile, one GPU)."""

    rows: tuple = param(tuple(ROWS), "rows of the table to train", choices=tuple(ROWS))
    seeds: tuple = param((0, 1, 2), "seeds per row (mean ± std over them)", item_min=0, max=SEED_MAX)
    epochs_inception: int = param(100, "epochs of the Inception row (the student's 100)", min=1)
    epochs_baseline: int = param(30, "epochs of BN-Baseline (it trains at Inception's rate: the "
                                     "paper's 2.3x speed-up needs more steps than the fast rows)", min=1)
    epochs_bn: int = param(30, "epochs of every other row (the student's 30)", min=1)
    batch_size: int = param(32, "examples per minibatch (the paper's 32; the learning rates "
                                "scale with it linearly)", min=2)
    lr_scale: float = param(1.0, "multiplies every row's learning rate", min=1e-3, max=1e3)
    momentum: float = param(0.9, "SGD momentum (the paper: momentum SGD)", min=0.0, max=0.999)
    weight_decay: float = param(5e-4, "L2 weight decay; the modified rows use a fifth", min=0.0)
    lr_decay: float = param(0.96, "lr factor per decay period (Inception: 4 % every 8 epochs)",
                            min=0.01, max=1.0)
    decay_epochs: float = param(8.0, "epochs per decay period; the modified rows: 6x fewer",
                                min=1e-3)
    jitter: float = param(0.2, "colour jitter of Inception and BN-Baseline", min=0.0, max=0.9)
    jitter_modified: float = param(0.1, "colour jitter of the modified rows (fewer distortions)",
                                   min=0.0, max=0.9)
    width: int = param(16, "TinyInception base width (16: 16→48→48 channels)", min=2)
    n_train: int = param(50_000, "training images (class-stratified subset)", min=64, max=50_000)
    n_test: int = param(10_000, "test images (class-stratified subset)", min=10, max=10_000)
    evals_per_epoch: int = param(1, "test-set evaluations per epoch", min=1)
    dense_evals_per_epoch: int = param(12, "test-set evaluations per epoch over the first "
                                           "dense_epochs: the fast rows cross the target early, and "
                                           "a speed-up is known only to one evaluation interval", min=0)
    dense_epochs: float = param(2.0, "epochs with dense evaluations", min=0.0)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # reference: all 50,000 images, one seed, every run <= 30 min and the table <= 2 h on an
        # idle 2-core CPU (estimated from pilots: chapter 05's notes); 3 evaluations per epoch
        # give the fast rows' speed-ups a resolution of about 1/3 epoch
        "reference": {"seeds": (0,), "epochs_inception": 30, "epochs_baseline": 15, "epochs_bn": 10,
                      "evals_per_epoch": 3},
        # quick: early training only, within the 3-minute budget (at 4,096 images the test
        # evaluations cost about as much as the training: 1,000 test images, dense ones for 1 epoch)
        "quick": {"seeds": (0,), "epochs_inception": 8, "epochs_baseline": 6, "epochs_bn": 4,
                  "n_train": 4096, "n_test": 1000, "evals_per_epoch": 2, "dense_evals_per_epoch": 8,
                  "dense_epochs": 1.0},
        "smoke": {"seeds": (0,), "epochs_inception": 1, "epochs_baseline": 1, "epochs_bn": 1,
                  "n_train": 256, "n_test": 200, "width": 8, "dense_evals_per_epoch": 2},
    }

    def validate(self) -> None:
        """Check that every run of the table is a valid :class:`RunConfig`."""
        for row in self.rows:
            self.run_config(row, self.seeds[0])

    def run_config(self, row: str, seed: int, /, **changes) -> RunConfig:
        """Return the fully resolved config of one (row, seed) run, with ``changes`` applied."""
        spec = ROWS[row]
        fast = spec.accelerated
        fields = dict(
            row=row, bn=spec.bn, activation=spec.activation,
            lr=BASE_LR * spec.lr_mult * self.lr_scale * self.batch_size / PAPER_BATCH,
            momentum=self.momentum,
            weight_decay=self.weight_decay / 5 if fast else self.weight_decay,
            lr_decay=self.lr_decay,
            decay_epochs=self.decay_epochs / 6 if fast else self.decay_epochs,
            dropout=spec.dropout, jitter=self.jitter_modified if fast else self.jitter,
            # Inception trains longest, BN-Baseline (same rate) next; sanity rows as long as BN rows
            epochs=(self.epochs_inception if not (spec.bn or fast) else
                    self.epochs_baseline if row == "BN-Baseline" else self.epochs_bn),
            batch_size=self.batch_size, width=self.width, n_train=self.n_train,
            n_test=self.n_test, evals_per_epoch=self.evals_per_epoch,
            dense_evals_per_epoch=self.dense_evals_per_epoch, dense_epochs=self.dense_epochs, seed=seed)
        fields.update(changes)
        return RunConfig(profile=self.profile, **fields)

    def runs(self) -> list[RunConfig]:
        """Return every run of the table, row by row."""
        return [self.run_config(row, seed) for row in self.rows for seed in self.seeds]


def rows_table(cfg: AblationConfig) -> list[dict]:
    """Return one line per row: what it trains with (BN, nonlinearity, lr, decay, ...)."""
    out = []
    for row in cfg.rows:
        rc = cfg.run_config(row, cfg.seeds[0])
        out.append({"row": row, "BN": "yes" if rc.bn else "no", "nonlinearity": rc.activation,
                    "lr": rc.lr, "dropout": rc.dropout, "weight decay": rc.weight_decay,
                    f"lr x{rc.lr_decay:g} every (epochs)": round(rc.decay_epochs, 3),
                    "colour jitter": rc.jitter, "epochs": rc.epochs, "what": ROWS[row].note})
    return out


# ---------------------------------------------------------------------------------------------
# One training run


@functools.lru_cache(maxsize=2)
def cifar_uint8(n_train: int, n_test: int, device: str) -> tuple[torch.Tensor, ...]:
    """Return CIFAR-10 ``(x_train, y_train, x_test, y_test)`` on ``device``: uint8 (N, 32, 32, 3)
    images, int64 labels (class-stratified subsets, the same for every run; decoded once)."""
    x_tr, y_tr, x_te, y_te = data.load("cifar10", n_train=n_train, n_test=n_test, seed=0)
    return tuple(torch.from_numpy(a).to(device) for a in (x_tr, y_tr, x_te, y_te))


def build_model(rc: RunConfig) -> nn.Module:
    """Return the run's TinyInception, He-initialised (then ``init_gain``), in channels_last if asked."""
    train.seed_everything(rc.seed)
    model = inception_net.TinyInception(width=rc.width, bn=rc.bn, act=rc.activation,
                                        dropout=rc.dropout, five=rc.five, final_bn=rc.final_bn)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.weight.mul_(rc.init_gain)
                if m.bias is not None:
                    m.bias.zero_()
    if rc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def optimizer(model: nn.Module, rc: RunConfig) -> torch.optim.SGD:
    """Return momentum SGD with weight decay on conv and linear weights only (not BN, not biases)."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": rc.weight_decay},
                            {"params": rest, "weight_decay": 0.0}], lr=rc.lr, momentum=rc.momentum)


def lr_schedule(rc: RunConfig):
    """Return ``lr_at(step)``: ``lr * lr_decay ** floor(epoch / decay_epochs)`` (a staircase)."""
    period = rc.decay_epochs * rc.steps_per_epoch

    def lr_at(step: int) -> float:
        return rc.lr * rc.lr_decay ** math.floor(step / period)
    return lr_at


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, *,
            channels_last: bool = True) -> torch.Tensor:
    """Return float32 logits of ``model`` (eval mode, restored after) on uint8 images (N, H, W, C)."""
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = augment.normalise(x[start: start + batch_size], channels_last=channels_last)
            out.append(model(xb).float())
    model.train(was_training)
    return torch.cat(out)


def scores(logits: torch.Tensor, y: torch.Tensor) -> dict:
    """Return ``{"accuracy", "loss"}`` of logits against labels (NaN logits count as wrong)."""
    return {"accuracy": (logits.argmax(1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item()}


def dense_eval_steps(rc: RunConfig) -> list[int]:
    """Return the steps of the extra early evaluations (those the regular ones do not cover)."""
    if not rc.dense_evals_per_epoch:
        return []
    every = max(1, rc.steps_per_epoch // rc.dense_evals_per_epoch)
    regular = rc.steps_per_epoch // rc.evals_per_epoch
    last = min(rc.steps, int(rc.dense_epochs * rc.steps_per_epoch))
    return [s for s in range(every, last + 1, every) if s % regular and s < rc.steps]


def train_run(rc: RunConfig, *, checkpoint=None) -> dict:
    """Train one run; return its history, steps per epoch, best/final test accuracy, whether it
    diverged, and its final test logits (float16) and labels."""
    device = train.default_device()
    x_tr, y_tr, x_te, y_te = cifar_uint8(rc.n_train, rc.n_test, str(device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # fixed shapes: let cuDNN pick its fastest kernels
    model = build_model(rc).to(device)
    net = train.Autocast(model, train.amp_dtype(device) if rc.amp else None)
    aug = augment.Augment(pad=rc.pad, flip=rc.flip, jitter=rc.jitter, channels_last=rc.channels_last)
    batches = augment.AugmentedBatches(data.batches(x_tr, y_tr, rc.batch_size, seed=rc.seed), aug)
    spe = rc.steps_per_epoch

    def eval_fn(m: nn.Module) -> dict:
        return scores(predict(m, x_te, channels_last=rc.channels_last), y_te)

    def dense_eval(step, m, x, y) -> dict:   # a hook: recorded in History.measures
        return eval_fn(m)

    hist = train.fit(net, batches, steps=rc.steps, optimizer=optimizer(model, rc),
                     lr_at=lr_schedule(rc), eval_fn=eval_fn, eval_every=spe // rc.evals_per_epoch,
                     log_every=max(1, spe // 4), checkpoint=checkpoint, checkpoint_every=spe,
                     hooks={s: [dense_eval] for s in dense_eval_steps(rc)}, progress=rc.name)
    logits = predict(net, x_te, channels_last=rc.channels_last)
    final = scores(logits, y_te)["accuracy"] if not hist.diverged else math.nan
    return {"history": hist.to_dict(), "steps_per_epoch": spe, "diverged": hist.diverged,
            "max_accuracy": max(a for a in hist.evals["accuracy"] if math.isfinite(a)),
            "final_accuracy": final,
            "images_per_second": hist.steps_done * rc.batch_size / max(hist.seconds, 1e-9),
            "test_logits": logits.cpu().numpy().astype(np.float16),
            "test_labels": y_te.cpu().numpy().astype(np.int8)}


def run_one(rc: RunConfig, chapter: str = CHAPTER) -> results.Record:
    """Return the stored record of one run, training it if needed (resuming from its checkpoint
    if an earlier attempt was killed; the checkpoint is removed once the record is stored)."""
    ckpt = results.checkpoint_path(chapter, rc.name, rc)
    record = results.load_or_run(chapter, rc.name, rc,
                                 functools.partial(train_run, checkpoint=ckpt))
    ckpt.unlink(missing_ok=True)
    return record


def run_table(cfg: AblationConfig) -> dict:
    """Train (or load) every (row, seed) run; return per row its seeds' histories and summaries."""
    out = {}
    for row in cfg.rows:
        runs = [run_one(cfg.run_config(row, seed)) for seed in cfg.seeds]
        out[row] = {
            "seeds": list(cfg.seeds),
            "steps_per_epoch": runs[0]["steps_per_epoch"],
            "history": [r["history"] for r in runs],
            "diverged": [r["diverged"] for r in runs],
            "max_accuracy": [r["max_accuracy"] for r in runs],
            "final_accuracy": [r["final_accuracy"] for r in runs],
            "images_per_second": [r["images_per_second"] for r in runs],
        }
    return out


def run(cfg: AblationConfig) -> results.Record:
    """Return the stored table of ``cfg`` (at the unmodified quick profile: the best stored record,
    full, else reference), training and storing what is missing."""
    return results.load_or_run(CHAPTER, "ablation", cfg, run_table, prefer_stored=True)


# ---------------------------------------------------------------------------------------------
# Analysis: curves, steps to the target accuracy, the comparison table


def _evaluations(h: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return a history's test evaluations, regular and dense (hook) ones, sorted by step."""
    steps = list(h["eval_step"]) + list(h.get("measure_step", []))
    acc = list(h["evals"]["accuracy"]) + list(h.get("measures", {}).get("accuracy", []))
    order = np.argsort(steps, kind="stable")
    return (np.asarray(steps)[order],
            np.array([np.nan if acc[i] is None else acc[i] for i in order], dtype=float))


def curve(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(eval steps, accuracy per seed)`` of a row, the dense early evaluations included
    (NaN where a diverged seed stopped)."""
    evals = [_evaluations(h) for h in row["history"]]
    steps = max(evals, key=lambda e: len(e[0]))[0]
    acc = np.full((len(evals), len(steps)), np.nan)
    for i, (_, a) in enumerate(evals):
        acc[i, : len(a)] = a
    return steps, acc


def mean_curve(row: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(eval steps, mean accuracy over the seeds that did not diverge)`` (all seeds if
    every one diverged)."""
    steps, acc = curve(row)
    ok = ~np.asarray(row["diverged"])
    return steps, np.nanmean(acc[ok] if ok.any() else acc, 0)


def steps_to_reach(steps: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    """Return the first step whose accuracy is >= ``target``, or None if it never gets there."""
    hit = np.flatnonzero(np.nan_to_num(accuracy, nan=-1.0) >= target - 1e-12)
    return int(steps[hit[0]]) if len(hit) else None


def ordered_rows(record: results.Record) -> list[str]:
    """Return the record's rows in table order (stored JSON sorts its keys; the table does not)."""
    return sorted(record.metrics, key=lambda r: list(ROWS).index(r) if r in ROWS else len(ROWS))


def diverged_at(row: dict) -> int | None:
    """Return the first step at which a seed of ``row`` diverged if every seed did, else None."""
    if not row["diverged"] or not all(row["diverged"]):
        return None
    steps = [h.get("diverged_at") for h in row["history"]]
    return min((s for s in steps if s is not None), default=None)


LEVEL_TAIL = 0.25        # "levelled off": the last quarter of training ...
LEVEL_GAIN = 0.005       # ... raised the best accuracy by less than half a percentage point


def levelling(steps: np.ndarray, accuracy: np.ndarray, tail: float = LEVEL_TAIL) -> dict:
    """Return how much the best accuracy rose over the last ``tail`` of the steps (``gain``) and
    whether that is below ``LEVEL_GAIN`` (``levelled``): is the curve still climbing at its end?"""
    acc = np.nan_to_num(np.asarray(accuracy, float), nan=-1.0)
    late = np.asarray(steps) > (1 - tail) * steps[-1]
    if late.all() or not late.any():
        return {"gain": float("nan"), "levelled": False}
    gain = float(max(acc[late].max() - acc[~late].max(), 0.0))
    return {"gain": gain, "levelled": gain < LEVEL_GAIN}


def crossing_interval(steps: np.ndarray, reach: int | None) -> float:
    """Return the steps between the evaluation at ``reach`` and the one before it: how precisely
    the crossing is known (NaN if never reached)."""
    if reach is None:
        return float("nan")
    i = int(np.searchsorted(steps, reach))
    return float(steps[i] - steps[i - 1]) if i > 0 else float(max(reach, 1))


def summary(record: results.Record) -> dict:
    """Return per row: best accuracy (mean, std over seeds), the target (best of the Inception
    row's mean curve, with whether that curve had levelled off), steps and epochs for the row's
    mean curve to reach it, the speed-up over Inception, its resolution (the evaluation interval
    before the crossing over the steps to target, summed for the two rows), how many seeds
    diverged and, if all did, where. A target at chance level (Inception diverged or never
    learned) is no target: no steps and no speed-ups then."""
    rows = record.metrics
    target, level = None, {"gain": float("nan"), "levelled": False}
    if TARGET_ROW in rows:
        base_steps, base_mean = mean_curve(rows[TARGET_ROW])
        target = float(np.nanmax(base_mean))
        level = levelling(base_steps, base_mean)
    at_chance = target is not None and not target >= CHANCE + CHANCE_MARGIN
    out = {}
    for name in ordered_rows(record):
        row = rows[name]
        steps, mean = mean_curve(row)
        best = np.asarray(row["max_accuracy"], dtype=float)
        reach = steps_to_reach(steps, mean, target) if target is not None and not at_chance \
            else None
        interval = crossing_interval(steps, reach)
        out[name] = {"max_accuracy": float(best.mean()), "max_accuracy_std": float(best.std()),
                     "n_seeds": len(best), "n_diverged": int(sum(row["diverged"])),
                     "diverged_at": diverged_at(row), "target": target,
                     "target_at_chance": at_chance, "target_levelled": level["levelled"],
                     "target_late_gain": level["gain"], "steps_to_target": reach,
                     "eval_interval": interval,
                     "epochs_to_target": None if reach is None else reach / row["steps_per_epoch"]}
    base = out.get(TARGET_ROW, {})
    for s in out.values():
        ok = base.get("steps_to_target") and s["steps_to_target"]
        s["speedup"] = base["steps_to_target"] / s["steps_to_target"] if ok else None
        s["speedup_resolution"] = (s["eval_interval"] / s["steps_to_target"]
                                   + base["eval_interval"] / base["steps_to_target"]) if ok else None
    return out


def reach_text(s: dict | None) -> str:
    """Return how a row of ``summary`` reached the target, as prose: ``1,234 steps (3.1 epochs)``,
    ``diverged at step N``, ``never (in this run)``, or why there is no target."""
    if s is None:
        return "never (in this run)"
    if s["steps_to_target"] is not None:
        return f"{s['steps_to_target']:,} steps ({s['epochs_to_target']:.1f} epochs)"
    if s["diverged_at"] is not None:
        return f"diverged at step {s['diverged_at']:,}"
    if s["target_at_chance"]:
        return f"no target: the best accuracy of {TARGET_ROW} is at chance level"
    return "never (in this run)"


def paper_speedups() -> dict:
    """Return the paper's speed-ups over Inception (its Figure 3: Inception's steps to 72.2 %
    divided by each row's), None where a row never reached it."""
    base = PAPER[TARGET_ROW]["steps"]
    return {row: None if p["steps"] is None else base / p["steps"] for row, p in PAPER.items()}


def _pm(mean: float, std: float, n: int, scale: float = 100.0) -> str:
    return f"{scale * mean:.1f} ± {scale * std:.1f}" if n > 1 else f"{scale * mean:.1f}"


def comparison(summ: dict) -> list[dict]:
    """Return the results table: ours (speed-ups with their resolution) beside the paper's
    ImageNet numbers (its Figure 3) and the student reproduction's."""
    out = []
    for name, s in summ.items():
        paper, student = PAPER.get(name, {}), STUDENT.get(name, {})
        steps = s["steps_to_target"]
        out.append({
            "row": name,
            "max acc. % (ours)": _pm(s["max_accuracy"], s["max_accuracy_std"], s["n_seeds"]),
            "steps to target (ours)": f"{steps:,}" if steps is not None else
            "—" if s["diverged_at"] is None else f"diverged at step {s['diverged_at']:,}",
            "epochs to target (ours)": "—" if steps is None else f"{s['epochs_to_target']:.1f}",
            "speed-up (ours)": "—" if s["speedup"] is None else
                               f"{s['speedup']:.1f}x ± {100 * s['speedup_resolution']:.0f} %",
            "diverged": f"{s['n_diverged']}/{s['n_seeds']}",
            "paper max % (Fig. 3)": paper.get("max_accuracy"),
            "paper steps to 72.2 % (Fig. 3)": _millions(paper.get("steps")) if paper else None,
            "paper speed-up": (None if not paper else "—" if paper_speedups()[name] is None
                               else f"{paper_speedups()[name]:.1f}x"),
            "student max %": student.get("max_accuracy"),
            "student epochs": (student.get("epochs") or "—") if student else None,
        })
    return out


def _millions(steps: float | None) -> str:
    return "—" if steps is None else f"{steps / 1e6:.1f}M"


def plot(record: results.Record):
    """Figure: test accuracy and training loss vs SGD steps, all rows; the target accuracy as a
    dashed line, where each row reaches it as a dot, where a seed diverged as a cross."""
    import matplotlib.pyplot as plt

    summ = summary(record)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(ordered_rows(record)):
        row = record.metrics[name]
        colour = colours[list(ROWS).index(name) % len(colours)] if name in ROWS else "0.5"
        steps, acc = curve(row)
        n_div = summ[name]["n_diverged"]
        label = name + (f" ({n_div}/{len(acc)} diverged)" if n_div else "")
        plotting.band(ax_acc, steps, 100 * acc, label=label, color=colour)
        reach = summ[name]["steps_to_target"]
        if reach is not None:  # later rows draw smaller dots, so rows reaching together all show
            ax_acc.plot([reach], [100 * summ[name]["target"]], "o", color=colour,
                        ms=max(3, 10 - 1.5 * i), zorder=3 + i)
        for h in row["history"]:
            loss = np.array([np.nan if v is None else v for v in h["loss"]], dtype=float)
            ax_loss.plot(h["step"], loss, color=colour, lw=1, alpha=0.8)
            if h["diverged"]:
                ax_acc.plot([h["diverged_at"]], [10.0], "x", color=colour, ms=9, mew=2)
                ax_loss.axvline(h["diverged_at"], color=colour, ls=":", lw=1)
    target = next(iter(summ.values()))["target"] if summ else None
    if target is not None:
        ax_acc.axhline(100 * target, color="0.4", ls="--", lw=1,
                       label=f"{TARGET_ROW}'s best ({100 * target:.1f} %)")
    plotting.label(ax_acc, title="CIFAR-10 test accuracy (dot: reaches Inception's best; "
                   "x: diverged)", xlabel="SGD step", ylabel="test accuracy (%)", legend=False)
    plotting.label(ax_loss, title="Training loss (mean over each quarter epoch)",
                   xlabel="SGD step", ylabel="cross-entropy (nats)", legend=False)
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5))
    cfg = record.config
    plotting.caption(fig, f"TinyInception width {cfg['width']}, {cfg['n_train']:,} training / "
                          f"{cfg['n_test']:,} test images, seeds {cfg['seeds']}. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig


def planned_steps(cfg: AblationConfig) -> int:
    """Return the SGD steps the whole table trains (every row and seed)."""
    return sum(rc.steps for rc in cfg.runs())
