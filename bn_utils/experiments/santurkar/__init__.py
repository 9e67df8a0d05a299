"""Chapters 7 and 8 (Santurkar et al. 2018): what the two chapters share.

Two model families, as in the paper's Appendix A: a VGG on CIFAR-10 (SGD, batch 128, no
augmentation, Glorot initialisation) and a 25-layer deep linear network (DLN) of width 10 fitted
by full-batch gradient descent to ``y = A x`` on 1,000 Gaussian examples with a summed squared
loss. ``config``: the shared fields and one run; ``training``: one training function that runs
either with a chapter's measurement hooks; ``experiment``: every run stored as its own record
and merged into the chapter's; ``analysis`` and ``figures``: reading those records. The
chapters' own parts are in ``ch07_santurkar_noise/`` and ``ch08_santurkar_smoothness/``.
"""

from .analysis import (  # noqa: F401
    final, fixed_sig, fmt_pm, last_finite, learned, learned_rule, per_seed, seeds_of, seeds_shown,
    seeds_text, spread, stacked, unpack)
from .config import LABELS, Run, SanturkarConfig, group  # noqa: F401
from .experiment import run_chapter, run_one, with_extra_seeds  # noqa: F401
from .figures import plot_curve  # noqa: F401
from .training import (  # noqa: F401
    Context, CountingLoss, build_model, cifar, dln_data, measure_steps, squared_error, train_run)
