"""Chapter 04: the MNIST experiment of Ioffe & Szegedy (2015, §4.1), reproduced and extended.

The paper trains a 784-100-100-100-10 sigmoid MLP on MNIST for 50,000 SGD steps of 60 examples,
with and without BN before each nonlinearity, and shows (Fig. 1) the test accuracy over training
and the 15th/50th/85th percentiles of the input to a typical sigmoid of the last hidden layer.
This package runs that protocol for several seeds and for sigmoid, tanh and ReLU after a small
learning-rate search on the networks without BN; it also compares initialisations of the sigmoid
net and trains it at batch size 1.

Speed: the networks of a sweep are trained together as one ``bn_utils.nn.stacked_mlp.StackedMLP``
(``S`` independent runs, each layer one batched matrix product for all of them).

Read in this order: ``config`` (the configuration), ``nets`` (the networks and data),
``training`` (a stack handed to ``train.fit``, the one training loop), ``rate_search`` (the
learning-rate search), ``experiment`` (the one caller of the store: the search, the main runs, the
initialisations, batch size 1, each stored as a record), ``analysis``
and ``figures`` (what the runs show). This package re-exports their names, so that the chapter
calls ``mnist.<name>`` whichever file holds it.
"""

from ...nn.stacked_mlp import StackedMLP, per_model_loss  # noqa: F401
from .config import CHAPTER, PERCENTILES, MnistConfig  # noqa: F401
from .config import init_label, parse_init  # noqa: F401
from .figures import (
    COLORS, plot_activations, plot_batch_size_one, plot_figure1, plot_inits, plot_lr_search)
from .nets import build_nets  # noqa: F401
from .experiment import (
    AnyBatchNorm1d, batch_one, batch_size_one, config_of, evaluate_stack, inits, learning_rates, runs,
    search, train_all)
from .rate_search import choose_lr, lr_search  # noqa: F401
from .analysis import (
    LABELS, accuracy_at, activation_gaps, activation_name, activation_table, distribution_drift,
    drift_ratios, drift_table, init_reading, init_table, init_words, lr_table, search_failures,
    select, steps_to, summary, truncate)
from .training import eval_schedule, train_stack  # noqa: F401
from .headlines import batch_one_claim, run_claims  # noqa: F401
