"""Chapter 05: Ioffe & Szegedy's Inception ablations (their Figures 2 and 3), on CIFAR-10.

Five rows, one network (:class:`bn_utils.nn.tiny_inception.TinyInception`), momentum SGD::

    Inception       no BN, lr 0.0015, dropout 0.4
    BN-Baseline     BN before every nonlinearity, lr 0.0015, dropout 0.4 (Inception + BN)
    BN-x5           BN, lr x5,  the paper's modifications
    BN-x30          BN, lr x30, the paper's modifications
    BN-x5-Sigmoid   BN, lr x5,  the paper's modifications, sigmoid instead of ReLU

plus two sanity rows without BN, each its BN twin's recipe for fewer epochs (``epochs_sanity``):
``Inception-x30`` (BN-x30's, which may diverge) and ``Inception-x5-Sigmoid`` (BN-x5-Sigmoid's; the
paper reports that sigmoid Inception without BN stays at chance accuracy).
"The paper's modifications" (their Sec. 4.2.1) are: no dropout, L2 weight decay / 5, learning-rate
decay 6x faster, fewer photometric distortions; their other two (no local response normalisation,
thorough shuffling) hold for every row here, since TinyInception has no LRN and every run
reshuffles all of its training set each epoch.

Every (row, seed) is one training run with its own stored record (``load_or_run`` of a
:class:`RunConfig`), holding its history and its final test-set logits (float16), so a killed sweep
resumes where it stopped (each run also checkpoints every epoch) and chapter 06 builds its ensemble
from chapter 05's BN-x30 runs instead of training them again.

Read in this order: ``config`` (the rows, one run's config and the table's), ``experiment`` (one
run and the table of runs, stored as records), ``analysis`` (curves, steps to the target, the
speed-ups and the comparison with the paper), ``headlines`` (the paper's claims beside a
record) and ``figures``. This package re-exports their
names, so that chapters 05 and 06 call ``inc.<name>`` whichever file holds it.
"""

from .config import (
    ABLATION_ROWS, BASE_LR, CHAPTER, ROWS, SANITY_ROWS, SANITY_TWINS,
    TARGET_ROW, AblationConfig, RunConfig, planned_steps, rows_table)
from .figures import plot, plot_loss  # noqa: F401
from .headlines import claim_rows  # noqa: F401
from .analysis import (
    LEVEL_GAIN, PAPER, STUDENT, STUDENT_BN_EPOCHS, at_equal_steps, comparison, crossing_interval, curve,
    diverged_at, late_gains_text, levelling, mean_curve, ordered_rows, orderings, paper_speedups, reach_sentence,
    reach_text, seed_levelling, seed_spread, seeds_against_target, seeds_rows, student_speedups,
    summary, target_sensitivity)
from .experiment import (
    build_model, cifar_uint8, dense_eval_steps, lr_schedule, optimizer, run, run_one, shown_config,
    stored_runs, stored_table, train_run)
