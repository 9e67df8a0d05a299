"""Chapter 08: BN makes the loss landscape smoother (Santurkar et al. 2018, Sec. 3).

At regular steps of training, from the current weights x, we walk along the negative gradient
with a range of step sizes (VGG: [1/2, 4] × LR, DLN: [1/100, 30] × LR) and record the loss, the
change of the gradient, and the "effective" beta-smoothness (``measure.gradient_landscape``).
The VGG trains with and without BN and with the three ℓp normalisations; standard and BN VGGs
also train (and are measured) at a larger learning rate; the deep linear network trains with every
normalisation.

Why more than the paper's comparison at one learning rate: trained at a fixed rate, gradient
descent settles where the curvature along its path is about 2 / LR (the "edge of stability",
Cohen et al. 2021), whatever the network, so the β met along training mostly reflects the rate.
:func:`beta_comparison` gives the measurements that can separate the networks: β at
initialisation (before any step), β at each learning rate beside 2 / LR, and β when both
networks have reached the same training loss.

Read in this order: ``config`` (the configuration), ``experiment`` (the runs and the landscape
hooks; one call trains or loads them all), ``analysis`` (what the record shows), ``headlines``
(the paper's claims beside the record) and ``figures``. The runs'
training and storage are chapter 7's and 8's shared ``santurkar`` package. This package
re-exports their names, so that the chapter calls ``smoothness.<name>`` whichever file holds it.
"""

from ..santurkar import LABELS, learned_rule, unpack  # noqa: F401
from .config import CHAPTER, LP_NETS, SmoothnessConfig
from .experiment import extra_runs, make_hooks, run, runs, with_extra_seeds
from .figures import (
    COLORS, plot_landscape, plot_large_lr, plot_normalisations, plot_step_profile, plot_training)
from .analysis import (
    WINDOW, beta_at_loss, beta_comparison, beta_table, edge_reading, edge_readings, flat_start,
    large_lr_note, landscape_ratios, loss_levels_note, on_flat_start, page_numbers, smoothness_summary,
    smoothness_table)
from .headlines import (
    beta_parts, beta_parts_text, claim_rows, claims_table, landscape_verdicts, lp_verdicts, verdicts_text)
