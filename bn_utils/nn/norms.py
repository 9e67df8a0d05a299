"""Batch Normalization from scratch, read top to bottom.

1. The maths in NumPy: ``batchnorm_forward`` and two backward passes (the compact closed form
   and the step-by-step chain rule) that the derivation chapter checks against each other.
2. The same closed form as a ``torch.autograd.Function`` (``BatchNormFunction``), written in
   torch ops so that its backward is itself differentiable.
3. Modules: ``BatchNorm1d`` and ``BatchNorm2d``, drop-ins for ``torch.nn``'s, which add the
   bookkeeping (running statistics, momentum, train/eval) around that function.
4. Inference: an eval-mode BN is a per-channel affine map (``bn_affine``), so it can be folded
   into the layer before it (``fold_batchnorm``).

Shapes: N is the batch size, D the number of features (NumPy part), C the number of channels;
a channel's statistics are taken over every dimension except C.
"""

import math

import numpy as np
import torch
from torch import nn

# ---------------------------------------------------------------------------------------------
# 1. The maths in NumPy, (N, D) inputs
# ---------------------------------------------------------------------------------------------


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode BN of x (N, D). Returns (out (N, D), cache for batchnorm_backward).

    gamma, beta: (D,). Normalises with the biased batch variance (divide by N), as the paper does.
    """
    if x.ndim != 2:
        raise ValueError(f"batchnorm_forward expects x of shape (N, D), got shape {x.shape}")
    mu = x.mean(axis=0)
    var = x.var(axis=0)  # biased: ddof=0
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv_std
    out = gamma * xhat + beta
    cache = (x, xhat, mu, var, inv_std, gamma, eps)
    return out, cache


def batchnorm_backward(dout, cache):
    """Closed-form BN backward of dout (N, D). Returns (dx (N, D), dgamma (D,), dbeta (D,)).

    dx = (gamma * inv_std / N) * (N * dout - sum(dout) - xhat * sum(dout * xhat)), sums over
    the batch: every x_i moves the mean and variance seen by all the others, which is what the
    two subtracted sums account for.
    """
    _, xhat, _, _, inv_std, gamma, _ = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = (gamma * inv_std / n) * (n * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_backward_naive(dout, cache):
    """Chain-rule BN backward through mu and var. Returns (dx (N, D), dgamma (D,), dbeta (D,)).

    One step per node of the forward graph x -> (mu, var) -> xhat -> out; slower and longer
    than ``batchnorm_backward`` but each line is one derivative you can check by hand.
    """
    x, xhat, mu, var, inv_std, gamma, eps = cache
    n = x.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    # xhat = (x - mu) * (var + eps)^(-1/2)
    dvar = np.sum(dxhat * (x - mu), axis=0) * -0.5 * (var + eps) ** -1.5
    # mu reaches the loss directly through xhat and indirectly through var; the indirect
    # term is zero in exact arithmetic (deviations sum to 0) but we keep it to stay literal.
    dmu = np.sum(-dxhat * inv_std, axis=0) + dvar * np.mean(-2.0 * (x - mu), axis=0)
    # x reaches the loss through xhat, var = mean((x - mu)^2) and mu = mean(x).
    dx = dxhat * inv_std + dvar * 2.0 * (x - mu) / n + dmu / n
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------------
# 2. The closed form as a torch.autograd.Function, (N, C) or (N, C, *spatial) inputs
# ---------------------------------------------------------------------------------------------


def _reduce_dims(x):
    """Return the dims a channel's statistics are taken over: all but dim 1 (C)."""
    return [0] + list(range(2, x.dim()))


def _per_channel(v, x):
    """Return the (C,) tensor v shaped (1, C, 1, ...) to broadcast against x."""
    return v.view([1, -1] + [1] * (x.dim() - 2))


def batch_statistics(x, eps, dims=None):
    """Return (xhat, mean, var, inv_std) of x normalised per channel with the biased batch
    variance ``var`` (keepdim shapes); the statistics are over ``dims`` (default: every dim but
    C). Plain torch ops, so differentiable (the closed-form backward below relies on it)."""
    dims = _reduce_dims(x) if dims is None else dims
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    var = centred.square().mean(dims, keepdim=True)
    inv_std = torch.rsqrt(var + eps)
    return centred * inv_std, mean, var, inv_std


def batchnorm_grads(dout, xhat, scale, dims):
    """Return (dx, dgamma, dbeta) of BN by the closed form, ``scale = gamma * inv_std`` per
    channel (keepdim shape), statistics over ``dims``:
    dx = scale / m * (m * dout - sum(dout) - xhat * sum(dout * xhat))."""
    m = math.prod(dout.shape[d] for d in dims)
    dbeta = dout.sum(dims, keepdim=True)
    dgamma = (dout * xhat).sum(dims, keepdim=True)
    dx = (scale / m) * (m * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def update_running(running_mean, running_var, batch_mean, batch_var, factor):
    """Return nothing; fold a batch's mean and unbiased variance into the running statistics,
    ``running = (1 - factor) * running + factor * batch`` (PyTorch's convention)."""
    with torch.no_grad():
        running_mean.mul_(1 - factor).add_(factor * batch_mean)
        running_var.mul_(1 - factor).add_(factor * batch_var)


def affine_from_stats(mean, var, gamma, beta, eps):
    """Return (scale, shift) with BN(x) = scale * x + shift when it normalises with the fixed
    statistics ``mean``, ``var``: scale = gamma / sqrt(var + eps), shift = beta - mean * scale
    (gamma, beta may be None: 1 and 0)."""
    scale = torch.rsqrt(var + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


class BatchNormFunction(torch.autograd.Function):
    """Training-mode BN with the closed-form backward: ``BatchNormFunction.apply(x, g, b, eps)``.

    x: (N, C) or (N, C, *spatial); gamma, beta: (C,) or None (meaning 1 and 0).
    Returns the normalised output, shaped like x.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, eps=1e-5):
        """Return gamma * xhat + beta, xhat normalised over all dims but C."""
        if x.dim() < 2:
            raise ValueError(f"BatchNormFunction expects (N, C, *) input, got {x.dim()}D input")
        xhat = batch_statistics(x, eps)[0]
        out = xhat
        if gamma is not None:
            out = out * _per_channel(gamma, x)
        if beta is not None:
            out = out + _per_channel(beta, x)
        # Save the inputs, not xhat: backward recomputes xhat from x in torch ops, so that when
        # it runs with create_graph=True its result stays connected to x (double backward).
        ctx.save_for_backward(x, gamma)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, dout):
        """Return (dx, dgamma, dbeta, None) by the closed form, itself differentiable."""
        x, gamma = ctx.saved_tensors
        dims = _reduce_dims(x)
        xhat, _, _, inv_std = batch_statistics(x, ctx.eps)
        scale = inv_std if gamma is None else _per_channel(gamma, x) * inv_std
        dx, sum_dout_xhat, sum_dout = batchnorm_grads(dout, xhat, scale, dims)
        dx = dx if ctx.needs_input_grad[0] else None
        dgamma = sum_dout_xhat.reshape(-1) if gamma is not None and ctx.needs_input_grad[1] else None
        dbeta = sum_dout.reshape(-1) if ctx.needs_input_grad[2] else None
        return dx, dgamma, dbeta, None


# ---------------------------------------------------------------------------------------------
# 3. Modules: drop-ins for torch.nn.BatchNorm1d / BatchNorm2d
# ---------------------------------------------------------------------------------------------


class BatchNormBase(nn.Module):
    """Shared state and forward of BatchNorm1d/2d; subclasses say which input dims they accept.

    The constructor is torch's, including the keyword-only ``bias`` of recent releases: with
    ``affine=True, bias=False`` BN learns a scale but no shift. One flag torch has not:
    ``allow_single_value=True`` normalises a channel with one value per batch (a batch of one
    example in a dense layer), which torch refuses: what a framework that allows it computes,
    every normalised value 0 and the running variance updated with the biased batch variance,
    0, since the unbiased one is 0/0.
    """

    # state_dict version 2 is the one with num_batches_tracked; torch's modules use the same
    # number, so state dicts travel between ours and torch's in both directions.
    _version = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True,
                 allow_single_value=False):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.allow_single_value = allow_single_value

        # Learnable per-channel scale (gamma) and shift (beta). Registering None when they are
        # off keeps the attributes, and their absence from state_dict, identical to torch's.
        self.register_parameter(
            "weight", nn.Parameter(torch.ones(num_features, **factory)) if affine else None)
        self.register_parameter(
            "bias", nn.Parameter(torch.zeros(num_features, **factory)) if affine and bias else None)

        # Running estimates used at inference, and how many batches went into them
        # (num_batches_tracked is what momentum=None averages over).
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked",
                                 torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Return nothing; set running mean 0, running variance 1 and the batch count 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        """Return nothing; reset running statistics and set weight 1, bias 0."""
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    # -- input checks -----------------------------------------------------------------------

    def _check_input_dim(self, x):
        raise NotImplementedError

    def _check_channels(self, x):
        """Raise RuntimeError, with torch's message, if x's C differs from our per-channel sizes."""
        # Checked before anything changes, so a wrong input cannot half-update the running stats.
        for name in ("running_mean", "running_var", "weight", "bias"):
            t = getattr(self, name)
            if t is not None and t.numel() != x.shape[1]:
                raise RuntimeError(f"{name} should contain {x.shape[1]} elements not {t.numel()}")

    def _check_can_normalise(self, x, use_batch_stats):
        """Raise ValueError, with torch's messages, where BN of x is undefined."""
        if use_batch_stats:
            if x.shape[0] * math.prod(x.shape[2:]) == 1 and not self.allow_single_value:
                # One value per channel: its variance is 0 and xhat is 0 whatever the input.
                raise ValueError("Expected more than 1 value per channel when training, "
                                 f"got input size {x.size()}")
            if self.eps <= 0:
                # A constant channel has variance 0; eps is all that keeps 1/sqrt finite.
                raise ValueError("batch_norm eps must be positive during training, "
                                 f"but got {self.eps}")
        elif self.eps < 0:
            raise ValueError(f"batch_norm eps must be non-negative, but got {self.eps}")

    # -- running statistics -----------------------------------------------------------------

    def update_running_stats(self, x):
        """Return nothing; fold this batch's mean and unbiased variance into the running ones."""
        self.num_batches_tracked.add_(1)
        if x.numel() == 0:
            return  # an empty batch has no statistics; torch counts it but leaves the estimates
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)  # cumulative moving average
        else:
            factor = self.momentum
        with torch.no_grad():
            dims = _reduce_dims(x)
            batch_mean = x.mean(dims)
            # Unbiased (divide by n - 1): the running value estimates the population variance,
            # while the batch is normalised with the biased one, as in the paper.
            # One value per channel (allow_single_value): 0/0; the biased variance, 0, instead.
            single = x.numel() == x.shape[1]
            batch_var = x.var(dims, correction=0 if single else 1)
            update_running(self.running_mean, self.running_var, batch_mean, batch_var, factor)

    # -- forward ----------------------------------------------------------------------------

    def forward(self, x):
        """Return BN of x, with batch statistics in training or when there are no running ones."""
        self._check_input_dim(x)
        self._check_channels(x)
        use_batch_stats = self.training or self.running_mean is None or self.running_var is None
        self._check_can_normalise(x, use_batch_stats)
        if use_batch_stats:
            if self.training and self.track_running_stats and self.running_mean is not None:
                self.update_running_stats(x)
            return BatchNormFunction.apply(x, self.weight, self.bias, self.eps)

        # Inference: fixed statistics make BN a per-channel affine map of x.
        out = (x - _per_channel(self.running_mean, x)) * _per_channel(
            torch.rsqrt(self.running_var + self.eps), x)
        if self.weight is not None:
            out = out * _per_channel(self.weight, x)
        if self.bias is not None:
            out = out + _per_channel(self.bias, x)
        return out

    # -- state_dict compatibility -----------------------------------------------------------

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        # State dicts written before version 2 have no num_batches_tracked; keep our own count
        # instead of failing a strict load, as torch does.
        key = prefix + "num_batches_tracked"
        version = local_metadata.get("version")
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            state_dict[key] = self.num_batches_tracked
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(BatchNormBase):
    """BN over (N, C) or (N, C, L) inputs; a drop-in for torch.nn.BatchNorm1d."""

    def _check_input_dim(self, x):
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")


class BatchNorm2d(BatchNormBase):
    """BN over (N, C, H, W) inputs; a drop-in for torch.nn.BatchNorm2d."""

    def _check_input_dim(self, x):
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")


# ---------------------------------------------------------------------------------------------
# 4. Inference: BN as an affine map, and folding it into the layer before
# ---------------------------------------------------------------------------------------------


def _running_stats_or_raise(bn):
    """Return (running_mean, running_var) of bn, or raise if it normalises with batch stats."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("an eval-mode BN without running statistics (track_running_stats=False) "
                         "uses batch statistics and is not a fixed affine map")
    return bn.running_mean, bn.running_var


def _scale_shift_float64(bn):
    """Return float64 (scale, shift) of eval-mode bn: gamma / sqrt(var + eps), beta - mean*scale."""
    mean, var = _running_stats_or_raise(bn)
    with torch.no_grad():
        # float64 so that callers who combine these with other weights round only once.
        return affine_from_stats(mean.double(), var.double(), _double(bn.weight),
                                 _double(bn.bias), bn.eps)


def _double(t):
    """Return ``t`` as float64, or None."""
    return None if t is None else t.double()


def bn_affine(bn):
    """Return (scale, shift), (C,) tensors with eval-mode bn(x) = scale * x + shift per channel."""
    scale, shift = _scale_shift_float64(bn)
    return scale.to(bn.running_var.dtype), shift.to(bn.running_var.dtype)


def fold_batchnorm(layer, bn):
    """Return a new nn.Linear or nn.Conv2d (with bias) equal to bn(layer(x)) with bn in eval mode.

    Works for torch's BN modules as well as ours; layer and bn are left unchanged. Per output
    channel c: bn(layer(x))_c = scale_c * (w_c . x + b_c) + shift_c, so the folded layer has
    weight scale_c * w_c and bias scale_c * b_c + shift_c.
    """
    if isinstance(layer, nn.Linear):
        out_channels = layer.out_features
        folded = nn.Linear(layer.in_features, layer.out_features, bias=True,
                           device=layer.weight.device, dtype=layer.weight.dtype)
    elif isinstance(layer, nn.Conv2d):
        out_channels = layer.out_channels
        # Copy every setting that changes what the conv computes, so only weights differ.
        folded = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                           stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                           groups=layer.groups, bias=True, padding_mode=layer.padding_mode,
                           device=layer.weight.device, dtype=layer.weight.dtype)
    else:
        raise TypeError("fold_batchnorm folds into nn.Linear or nn.Conv2d, "
                        f"got {type(layer).__name__}")
    if bn.num_features != out_channels:
        raise ValueError(f"bn has {bn.num_features} channels but the layer outputs {out_channels}")

    scale, shift = _scale_shift_float64(bn)
    with torch.no_grad():
        # Multiply in float64 and round once, so the folded layer is as close as its dtype allows.
        w = layer.weight.double()
        b = torch.zeros_like(scale) if layer.bias is None else layer.bias.double()
        folded.weight.copy_(w * scale.view([-1] + [1] * (w.dim() - 1)))
        folded.bias.copy_(b * scale + shift)
    return folded
