"""Chapter 07: is BN about internal covariate shift? (Santurkar et al. 2018, Sec. 2)

Two experiments. (1) "Noisy BN": four VGGs train at one learning rate (standard, BN, BN followed
by the paper's time-varying noise, and the standard network with the same noise); while they
train we record the distribution of a few layers' inputs to the ReLU on a fixed batch (training
mode, noise on). (2) Gradient-based ICS (the paper's Definition 2.1): at regular steps, how much
the gradient of layer i changes when the layers before it take their SGD step, for the VGG at two
learning rates and for the deep linear network.

Read in this order: ``config`` (the configuration), ``experiment`` (the runs and their
measurement hooks; one call trains or loads them all), ``analysis`` (what the runs measure,
summarised), ``headlines`` (the paper's claims beside the record) and ``figures``. The runs' training and storage are chapters 7 and 8's shared ``santurkar`` package.
This package re-exports their names, so that the chapter calls ``noise.<name>`` whichever file
holds it.
"""

from ..santurkar import LABELS, learned_rule, unpack  # noqa: F401
from .config import CHAPTER, NOISE_NETS, PERCENTILES, NoiseConfig
from .experiment import extra_runs, make_hooks, run, runs, with_extra_seeds
from .figures import (
    COLORS, plot_distributions, plot_ics, plot_moment_changes, plot_training)
from .headlines import KEEP, claim_rows, claims_table, ics_cases, kept_shares, worse_text  # noqa: F401
from .analysis import (
    ANTI_COSINE, accuracy_table, ics_summary, ics_table, noise_networks, shift_summary, shift_table)
