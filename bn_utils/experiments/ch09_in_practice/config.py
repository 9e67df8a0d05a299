"""Chapter 09's configuration: one frozen config for its nine experiments, with its profiles and
the extra records some verdicts need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...nn.alternatives import ALTERNATIVES
from ...book.profiles import BATCH_MAX, SEED_MAX, STEPS_MAX, WIDTH_MAX, Config, param

CHAPTER = "09_in_practice"
# The student project's network (../shared/sources/003_…, section 3.1): an MLP with 4 hidden
# layers of 1000 units; timed at batch 1024 (Table 3.2.1).
STUDENT_MLP = {"hidden_layers": 4, "hidden_width": 1000, "batch": 1024}


@dataclass(frozen=True)
class PracticeConfig(Config):
    """Chapter 9's experiments (defaults: the ``full`` profile, GPU scale)."""

    seeds: tuple = param((0, 1, 2), "seeds of every training run (mean over seeds)", item_min=0,
                         max=SEED_MAX)
    n_train: int = param(60_000, "MNIST training images (class-stratified subset)", min=256,
                         max=60_000)
    n_test: int = param(10_000, "MNIST test images", min=100, max=10_000)
    cpu_threads: int = param(0, "intra-op threads on CPU (0: torch's default)", min=0, max=1024)
    # 1-2: batch size and the alternatives to BN (small CNN)
    batch_sizes: tuple = param((2, 4, 8, 32, 128), "training batch sizes of the sweep", item_min=2,
                               max=BATCH_MAX)
    norms: tuple = param(ALTERNATIVES, "normalisations compared", choices=ALTERNATIVES)
    cnn_width: int = param(16, "channels of the CNN's first convolution (the second has twice)", min=2,
                           max=WIDTH_MAX)
    sweep_steps: int = param(3000, "SGD steps of every run of the sweep (same for all batch sizes)", min=1,
                             max=STEPS_MAX)
    sweep_lr: float = param(0.02, "learning rate of the sweep (SGD, momentum 0.9)", min=1e-6,
                            max=100.0)
    gn_groups: int = param(4, "groups of GroupNorm", min=1, max=1000)
    renorm_rmax: float = param(3.0, "Batch Renorm: final rmax (Ioffe 2017)", min=1.0, max=1000.0)
    renorm_dmax: float = param(5.0, "Batch Renorm: final dmax (Ioffe 2017)", min=0.0, max=1000.0)
    renorm_warmup: float = param(0.1, "Batch Renorm: fraction of steps trained as plain BN", min=0.0, max=1.0)
    renorm_ramp: float = param(0.4, "Batch Renorm: fraction of steps over which the limits grow", min=0.0, max=1.0)
    # 3-5, 8: placement, dropout, initialisation, weight decay (MLP)
    mlp_width: int = param(256, "hidden units per layer of the MLP", min=2, max=WIDTH_MAX)
    mlp_depth: int = param(3, "hidden layers of the MLP", min=1, max=1000)
    mlp_steps: int = param(3000, "SGD steps of each MLP run", min=1, max=STEPS_MAX)
    mlp_batch: int = param(64, "MLP batch size", min=2, max=BATCH_MAX)
    mlp_lr: float = param(0.05, "MLP learning rate (SGD, momentum 0.9)", min=1e-6, max=100.0)
    dropout: float = param(0.5, "dropout probability of the dropout experiment", min=0.0, max=0.95)
    init_scales: tuple = param((0.1, 1.0, 10.0), "factors on torch's default initial weights", item_min=1e-6,
                               max=1000.0)
    weight_decay: float = param(5e-3, "weight decay of the scale-invariance experiment", min=0.0,
                                max=1.0)
    wd_lr: float = param(0.1, "learning rate of the weight-decay experiment (plain SGD)", min=1e-6,
                         max=100.0)
    eval_every: int = param(250, "steps between test evaluations of the curves", min=1,
                            max=STEPS_MAX)
    # 6: the genetic learning-rate / L2 search
    ga_population: int = param(10, "GA population (the student trains 10 new models per generation)", min=2,
                               max=10_000)
    ga_generations: int = param(10, "GA generations (the student's 10)", min=1, max=10_000)
    ga_keep: int = param(3, "GA survivors per generation (the student's best 3 reset the bounds instead)", min=1,
                         max=10_000)
    ga_mutation_std: float = param(1.5, "GA mutation std of ln LR and ln L2 (the student has none: "
                                         "bounds at mean ± 1.5 std of the best 3, in log10)", min=1e-3,
                                   max=1000.0)
    ga_log10_lr: tuple = param((-4.0, 1.0), "GA bounds of log10 LR", min=-12.0, max=3.0)
    ga_log10_l2: tuple = param((-7.0, -1.0), "GA bounds of log10 L2 (SGD weight decay)",
                               min=-12.0, max=3.0)
    ga_width: int = param(1000, "GA MLP hidden width (the student's 4 x 1000)", min=2,
                          max=WIDTH_MAX)
    ga_steps: int = param(2000, "SGD steps per GA candidate", min=1, max=STEPS_MAX)
    ga_batch: int = param(128, "GA batch size", min=2, max=BATCH_MAX)
    # 7: cost of BN
    cost_width: int = param(1000, "cost: MLP hidden width (the student's 4 x 1000)", min=2,
                            max=WIDTH_MAX)
    cost_batch: int = param(1024, "cost: MLP batch (the student's 1024)", min=1, max=BATCH_MAX)
    cost_inception_width: int = param(16, "cost: TinyInception width", min=2, max=WIDTH_MAX)
    cost_inception_batch: int = param(128, "cost: TinyInception batch", min=1, max=BATCH_MAX)
    cost_repeats: int = param(30, "cost: timed repetitions per network (median)", min=1, max=10_000)
    # 9: fine-tuning with small batches
    ft_pretrain_steps: int = param(3000, "fine-tuning: pre-training steps on digits 0-4 (batch 64)", min=1,
                                   max=STEPS_MAX)
    ft_steps: int = param(500, "fine-tuning: steps on digits 5-9", min=1, max=STEPS_MAX)
    ft_batch_sizes: tuple = param((2, 4), "fine-tuning batch sizes", item_min=2, max=BATCH_MAX)
    ft_lr: float = param(0.01, "fine-tuning learning rate (SGD, momentum 0.9)", min=1e-6, max=100.0)
    ft_n_train: int = param(1000, "fine-tuning: training images of digits 5-9", min=8,
                            max=60_000)

    # 9: the digits fine-tuning adds (pre-training sees the others); not a parameter
    FT_NEW_DIGITS: ClassVar[tuple] = (5, 6, 7, 8, 9)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # reference: the largest scale that runs in well under an hour on a busy 2-core CPU
        "reference": {"cpu_threads": 1, "seeds": (0, 1, 2), "n_train": 10_000, "n_test": 2000, "cnn_width": 8,
                      "sweep_steps": 200, "mlp_width": 64, "mlp_steps": 800, "eval_every": 80,
                      "ga_population": 8, "ga_generations": 5, "ga_keep": 3, "ga_width": 128, "ga_steps": 150,
                      "cost_width": 512, "cost_inception_batch": 64, "cost_repeats": 10,
                      "ft_pretrain_steps": 800, "ft_steps": 200, "ft_n_train": 500, "weight_decay": 1e-2},
        "quick": {"cpu_threads": 1, "seeds": (0,), "n_train": 4000, "n_test": 500, "cnn_width": 4, "sweep_steps": 40,
                  "mlp_width": 64, "mlp_steps": 150, "eval_every": 30, "ga_population": 4,
                  "ga_generations": 3, "ga_keep": 2, "ga_width": 64, "ga_steps": 40, "cost_width": 64,
                  "cost_inception_width": 4, "cost_inception_batch": 32, "cost_repeats": 10,
                  "ft_pretrain_steps": 150, "ft_steps": 50, "ft_n_train": 200, "weight_decay": 1e-2},
        "smoke": {"cpu_threads": 1, "seeds": (0,), "n_train": 512, "n_test": 200, "cnn_width": 4, "sweep_steps": 3,
                  "batch_sizes": (2, 8), "mlp_width": 16, "mlp_depth": 2, "mlp_steps": 6,
                  "eval_every": 3, "init_scales": (0.1, 10.0), "ga_population": 2, "ga_generations": 2,
                  "ga_keep": 1, "ga_width": 8, "ga_steps": 3, "cost_width": 32, "cost_batch": 64,
                  "cost_inception_width": 4, "cost_inception_batch": 8, "cost_repeats": 1,
                  "ft_pretrain_steps": 4, "ft_steps": 3, "ft_n_train": 16},
    }

    # Extra records of a profile, each stored as its own record under its own name (so that the
    # profile's records keep their digests) and trained by tools/train_runs.py: for the verdicts
    # that need a spread or sit on a knife edge, the GA search and the timing repeated (the GA
    # with seeds 1 and 2), seeds 3-5 of the batch sweep, and the placement runs scored on all
    # 10,000 test images. name: (experiment, changes to the profile's config)
    EXTRA_RECORDS: ClassVar[dict] = {"reference": {
        "ga_search_s1": ("ga_search", {"seeds": (1,)}), "ga_search_s2": ("ga_search", {"seeds": (2,)}),
        "batch_sweep_s3-5": ("batch_sweep", {"seeds": (3, 4, 5)}),
        "placement_test10k": ("placement", {"n_test": 10_000}),
        "cost_2": ("cost", {}), "cost_3": ("cost", {})}}

    def extra_records(self) -> dict[str, tuple[str, "PracticeConfig"]]:
        """Return ``{name: (experiment, config)}`` of this profile's extra records."""
        return {name: (experiment, self.replace(**changes))
                for name, (experiment, changes) in self.EXTRA_RECORDS.get(self.profile, {}).items()}

    def extra_configs(self) -> list["PracticeConfig"]:
        """Return the configs the extra records are stored under."""
        return [c for _, c in self.extra_records().values()]

    def validate(self) -> None:
        """Check the cross-field constraints (GA survivors, bounds, groups, batch sizes)."""
        if self.ga_keep >= self.ga_population:
            raise ValueError(f"parameter ga_keep={self.ga_keep} must be smaller than "
                             f"ga_population={self.ga_population}")
        for name in ("ga_log10_lr", "ga_log10_l2"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
                raise ValueError(f"parameter {name}={lo_hi} must be (low, high) with low < high")
        if self.cnn_width % self.gn_groups:
            raise ValueError(f"parameter gn_groups={self.gn_groups} must divide cnn_width={self.cnn_width}")
        if max(self.batch_sizes + (self.mlp_batch, self.ga_batch)) > self.n_train:
            raise ValueError(f"batch sizes must not exceed n_train={self.n_train}")

    def renorm_kwargs(self, steps: int) -> dict:
        """Return Batch Renorm's limits and schedule for a run of ``steps`` steps."""
        return {"rmax": self.renorm_rmax, "dmax": self.renorm_dmax,
                "warmup_steps": int(self.renorm_warmup * steps), "ramp_steps": int(self.renorm_ramp * steps)}
