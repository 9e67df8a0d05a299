"""Chapter 02: the forward pass of BN in training and at inference, and how it goes wrong.

One module per section of the chapter, in its order; this package re-exports their names, so
that the chapter calls ``fwd.<name>`` whichever file holds it:

1. ``normalisation``: what training-mode BN reduces over (1d: the batch; 2d: the batch and
   every position), that it really gives zero mean and unit variance per feature, that gamma and
   beta can undo it; and (section 2) our module (``bn_utils.nn.norms``) against torch's.
3. ``running_stats``: the three momentum conventions (PyTorch, Keras, the paper), converted to
   PyTorch's, on a stream of batches from a known distribution; the bias of the batch variance.
4. ``batch_mates``: train vs eval, in training an example's output depends on its batch mates.
5. Three classic bugs, with the layers that have them (teaching code, named as such) and their
   measured symptoms: ``momentum_bug`` (a pasted Keras momentum), ``eval_branch_bug`` (an output
   computed only in the eval branch) and ``batch_size_one``.
6. ``folding``: at inference BN is an affine map, so it folds into the layer before it.

``config`` holds the configuration and what the sections share; ``experiment`` runs each
section's measurement into the store and reads it back (the one caller of the store);
``figures`` the figures and tables drawn from the stored records. The small conv net and ``fold_model`` are in
``bn_utils.nn.models``.
"""

from .batch_mates import (
    batch_dependence, stacked_train_forward)
from .batch_size_one import batch_size_one_rows, single_image_is_instance_norm
from .config import CHAPTER, ForwardConfig  # noqa: F401
from .eval_branch_bug import (
    EVAL_BRANCH_NETS, EvalBranchBatchNorm1d, eval_branch_symptoms)
from .experiment import (  # noqa: F401
    run_batch_dependence, run_eval_branch, run_momentum_bugs, run_running_estimates)
from .figures import (
    convention_checks, early_accuracy_gap, eval_branch_table, momentum_bug_table,
    plot_batch_dependence, plot_eval_branch, plot_momentum_bugs, plot_running_estimates,
    plot_variance_bias)
from .folding import fold_check, fold_timing  # noqa: F401
from .headlines import eval_branch_claim, population_check, population_claim  # noqa: F401
from .momentum_bug import (
    BUG_MOMENTA, last_batch_gap, momentum_bug_runs, precise_bn,
    running_stat_errors)
from .normalisation import (
    compare_with_torch, identity_check, normalisation_rows, torch_comparison_rows)
from .running_stats import (
    keras_to_torch_momentum, keras_update, paper_population_stats, running_estimates)
