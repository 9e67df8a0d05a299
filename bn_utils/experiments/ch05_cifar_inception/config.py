"""Chapter 05's configuration: the ablation rows, one training run (:class:`RunConfig`) and the
table (:class:`AblationConfig`), which resolves every (row, seed) into a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...nn import tiny_inception
from ...book.profiles import BATCH_MAX, EPOCHS_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param

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


ROWS: dict[str, Row] = {
    "Inception": Row(bn=False, lr_mult=1, dropout=0.4),
    # the paper's BN-Baseline is "Inception with BN": it keeps dropout (removing dropout is one of
    # the Sec. 4.2.1 modifications, which only the accelerated rows take)
    "BN-Baseline": Row(bn=True, lr_mult=1, dropout=0.4),
    "BN-x5": Row(bn=True, lr_mult=5, accelerated=True),
    "BN-x30": Row(bn=True, lr_mult=30, accelerated=True),
    "BN-x5-Sigmoid": Row(bn=True, lr_mult=5, activation="sigmoid", accelerated=True),
    # sanity rows, not in the paper: BN-x30 and BN-x5-Sigmoid without BN (the first may diverge)
    "Inception-x30": Row(bn=False, lr_mult=30, accelerated=True),
    "Inception-x5-Sigmoid": Row(bn=False, lr_mult=5, activation="sigmoid", accelerated=True),
}
SANITY_TWINS = {"Inception-x30": "BN-x30", "Inception-x5-Sigmoid": "BN-x5-Sigmoid"}   # each: its BN twin
SANITY_ROWS = tuple(SANITY_TWINS)
ABLATION_ROWS = tuple(r for r in ROWS if r not in SANITY_ROWS)
TARGET_ROW = "Inception"   # steps are counted to this row's best accuracy

@dataclass(frozen=True)
class RunConfig(Config):
    """One training run, fully resolved: what a (row, seed) of the table trains with."""

    row: str = param("BN-x30", "the ablation row this run belongs to (a label)")
    bn: bool = param(True, "BatchNorm before every nonlinearity")
    activation: str = param("relu", "nonlinearity", choices=("relu", "sigmoid"))
    lr: float = param(0.045, "initial learning rate", min=1e-6, max=1e4)
    momentum: float = param(0.9, "SGD momentum", min=0.0, max=0.999)
    weight_decay: float = param(1e-4, "L2 weight decay (conv and linear weights)", min=0.0,
                                max=1.0)
    lr_decay: float = param(0.96, "learning-rate factor per decay period", min=0.01, max=1.0)
    decay_epochs: float = param(8 / 6, "epochs per decay period", min=1e-3, max=EPOCHS_MAX)
    dropout: float = param(0.0, "dropout before the classifier", min=0.0, max=0.9)
    final_bn: bool = param(False, "per-activation BN on the pooled features")
    init_gain: float = param(1.0, "factor on the initial conv weights", min=0.01, max=100.0)
    jitter: float = param(0.1, "colour-jitter strength (0: none)", min=0.0, max=0.9)
    pad: int = param(4, "random-crop padding in pixels (0: no crop)", min=0, max=16)
    flip: bool = param(True, "random horizontal flips")
    epochs: int = param(30, "training epochs", min=1, max=EPOCHS_MAX)
    batch_size: int = param(32, "examples per minibatch", min=2, max=BATCH_MAX)
    width: int = param(16, "TinyInception base width (16: 16→48→48 channels)", min=2,
                       max=WIDTH_MAX)
    five: str = param("double3x3", "the 5x5 branch", choices=tiny_inception.FIVES)
    n_train: int = param(50_000, "training images (class-stratified subset)", min=64, max=50_000)
    n_test: int = param(10_000, "test images (class-stratified subset)", min=10, max=10_000)
    evals_per_epoch: int = param(1, "test-set evaluations per epoch", min=1, max=STEPS_MAX)
    dense_evals_per_epoch: int = param(0, "extra test-set evaluations per epoch over the first "
                                          "dense_epochs (where the fast rows cross the target)", min=0,
                                       max=STEPS_MAX)
    dense_epochs: float = param(2.0, "epochs with dense evaluations", min=0.0, max=EPOCHS_MAX)
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
    epochs_inception: int = param(100, "epochs of the Inception row (the student's 100)", min=1,
                                  max=EPOCHS_MAX)
    epochs_baseline: int = param(30, "epochs of BN-Baseline (the student's 30; it trains at "
                                     "Inception's rate, so the quick profile gives it more than the fast rows)", min=1,
                                 max=EPOCHS_MAX)
    epochs_bn: int = param(60, "epochs of BN-x5, BN-x30 and BN-x5-Sigmoid (the student's 30, "
                               "after which their curves were still rising)",
                           min=1, max=EPOCHS_MAX)
    epochs_sanity: int = param(30, "epochs of the two sanity rows without BN (their claims "
                                   "ask only whether a row learns)", min=1, max=EPOCHS_MAX)
    batch_size: int = param(32, "examples per minibatch (the paper's 32; the learning rates "
                                "scale with it linearly)", min=2, max=BATCH_MAX)
    lr_scale: float = param(1.0, "multiplies every row's learning rate", min=1e-3, max=1e3)
    momentum: float = param(0.9, "SGD momentum (the paper: momentum SGD)", min=0.0, max=0.999)
    weight_decay: float = param(5e-4, "L2 weight decay; the modified rows use a fifth", min=0.0,
                                max=1.0)
    lr_decay: float = param(0.96, "lr factor per decay period (Inception: 4 % every 8 epochs)",
                            min=0.01, max=1.0)
    decay_epochs: float = param(8.0, "epochs per decay period; the modified rows: 6x fewer",
                                min=1e-3, max=EPOCHS_MAX)
    jitter: float = param(0.2, "colour jitter of Inception and BN-Baseline", min=0.0, max=0.9)
    jitter_modified: float = param(0.1, "colour jitter of the modified rows (fewer distortions)",
                                   min=0.0, max=0.9)
    width: int = param(16, "TinyInception base width (16: 16→48→48 channels)", min=2,
                       max=WIDTH_MAX)
    n_train: int = param(50_000, "training images (class-stratified subset)", min=64, max=50_000)
    n_test: int = param(10_000, "test images (class-stratified subset)", min=10, max=10_000)
    evals_per_epoch: int = param(1, "test-set evaluations per epoch", min=1, max=STEPS_MAX)
    dense_evals_per_epoch: int = param(4, "test-set evaluations per epoch over the first "
                                          "dense_epochs: the BN rows cross the target there, and "
                                          "a speed-up is known only to one evaluation interval", min=0,
                                       max=STEPS_MAX)
    dense_epochs: float = param(10.0, "epochs with dense evaluations (where the rows cross "
                                      "Inception's best; sparse after)", min=0.0,
                                max=EPOCHS_MAX)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # reference: the full protocol on a 2-core CPU (Inception 100 epochs and the accelerated BN
        # rows 60, until their curves have levelled off; BN-Baseline and the sanity rows 30; three
        # seeds), about 7.5 h with two one-thread workers (the stored runs' own times;
        # benchmarks/ch05_cifar_inception/epoch.py times an epoch); each run checkpoints every epoch
        "reference": {},
        # quick: early training only, within the 3-minute budget (at 4,096 images the test
        # evaluations cost about as much as the training: 1,000 test images, dense ones for 1 epoch)
        "quick": {"seeds": (0,), "epochs_inception": 8, "epochs_baseline": 6, "epochs_bn": 4,
                  "epochs_sanity": 4, "n_train": 4096, "n_test": 1000, "evals_per_epoch": 2,
                  "dense_evals_per_epoch": 8, "dense_epochs": 1.0},
        "smoke": {"seeds": (0,), "epochs_inception": 1, "epochs_baseline": 1, "epochs_bn": 1,
                  "epochs_sanity": 1, "n_train": 256, "n_test": 200, "width": 8,
                  "dense_evals_per_epoch": 2},
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
            epochs=(self.epochs_inception if not (spec.bn or fast) else
                    self.epochs_baseline if row == "BN-Baseline" else
                    self.epochs_sanity if row in SANITY_ROWS else self.epochs_bn),
            batch_size=self.batch_size, width=self.width, n_train=self.n_train,
            n_test=self.n_test, evals_per_epoch=self.evals_per_epoch,
            dense_evals_per_epoch=self.dense_evals_per_epoch, dense_epochs=self.dense_epochs, seed=seed)
        fields.update(changes)
        return RunConfig(profile=self.profile, **fields)

    def runs(self) -> list[RunConfig]:
        """Return every run of the table, row by row."""
        return [self.run_config(row, seed) for row in self.rows for seed in self.seeds]


def rows_table(cfg: AblationConfig) -> list[dict]:
    """Return one line per row: what it trains with (BN, nonlinearity, epochs, lr, decay, ...;
    the budget early, where a narrow page shows it without scrolling)."""
    out = []
    for row in cfg.rows:
        rc = cfg.run_config(row, cfg.seeds[0])
        out.append({"row": row, "BN": "yes" if rc.bn else "no", "nonlinearity": rc.activation,
                    "epochs": rc.epochs, "lr": rc.lr, "dropout": rc.dropout,
                    "weight decay": rc.weight_decay,
                    f"lr x{rc.lr_decay:g} every (epochs)": round(rc.decay_epochs, 3),
                    "colour jitter": rc.jitter,
                    "Sec. 4.2.1 changes": "yes" if ROWS[row].accelerated else "no"})
    return out



def planned_steps(cfg: AblationConfig) -> int:
    """Return the SGD steps the whole table trains (every row and seed)."""
    return sum(rc.steps for rc in cfg.runs())
