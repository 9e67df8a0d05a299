"""The book's exercises: ``check_<name>(answer)`` tests an answer on random inputs and prints
``correct``, ``not done yet: ...`` or one sentence saying what is wrong (the axis, the variance,
the missing term, the momentum convention, ...). It returns a ``Result``, truthy when correct.

    from bn_utils import exercises as ex
    ex.check_batch_stats(batch_stats)          # the reader's check: prints, never fails the run
    assert ex.check_batch_stats(batch_stats)   # after the solution: CI fails if it is wrong

One module per part of the book, every checker re-exported here: ``foundations`` (chapters
01-03), ``reproductions`` (04-06), ``why_it_works`` (07-08), ``in_practice`` (09). How a checker
is written: ``checker``. Array answers may be NumPy arrays or torch tensors.
"""

from .foundations import (  # noqa: F401 (the chapters call ex.check_<name>)
    check_batch_of_two, check_batch_stats, check_bn_backward, check_bn_nhwc, check_bn_train,
    check_dgamma_dbeta, check_drift, check_fold_linear, check_group_norm,
    check_jacobian_row_sum, check_numerical_gradient, check_running_update, check_sigmoid_slope)
from .reproductions import (  # noqa: F401 (the chapters call ex.check_<name>)
    check_conv_block_params, check_ensemble_probs, check_lr_scale, check_lr_schedule,
    check_parameter_difference, check_sgd_step, check_steps_to_target, check_topk_accuracy,
    check_weight_scale_gradient)
from .why_it_works import (  # noqa: F401 (the chapters call ex.check_<name>)
    check_effective_smoothness, check_gradient_ics, check_lp_divisor, check_noise_mean_scale,
    check_noisy_bn, check_safe_lr)
from .in_practice import (  # noqa: F401 (the chapters call ex.check_<name>)
    check_dropout_variance, check_renorm_tight, check_rms_norm)
