"""Section 3 of chapter 02: running statistics. The three momentum conventions (PyTorch, Keras,
the paper), converted to PyTorch's, on a stream of batches from a known distribution; and the
bias of the batch variance."""

from __future__ import annotations

import numpy as np
import torch

from ...nn import norms
from .config import ForwardConfig

# The known distribution of the stream of batches.
STREAM_MEAN, STREAM_STD = 2.0, 3.0


def keras_to_torch_momentum(keras_momentum: float) -> float:
    """Return the PyTorch momentum equal to a Keras one: Keras keeps m of the old value, PyTorch
    takes m of the new batch, so m_torch = 1 − m_keras (Keras 0.99 ≡ PyTorch 0.01)."""
    if not 0 <= keras_momentum <= 1:
        raise ValueError(f"keras_momentum={keras_momentum!r} must lie in [0, 1]")
    return 1.0 - keras_momentum


def keras_update(moving, batch, keras_momentum: float):
    """Return Keras' moving estimate after one batch: m·moving + (1 − m)·batch."""
    return keras_momentum * moving + (1 - keras_momentum) * batch


def paper_population_stats(batch_means, batch_vars, batch_size: int) -> tuple[float, float]:
    """Return the paper's inference statistics (Ioffe & Szegedy, Alg. 2): E[x] = the average of
    the batch means, Var[x] = m/(m − 1) times the average of the (biased) batch variances."""
    if batch_size < 2:
        raise ValueError(f"batch_size={batch_size} must be >= 2 for an unbiased variance")
    m = batch_size
    return float(np.mean(batch_means)), float(m / (m - 1) * np.mean(batch_vars))


def _stream(cfg: ForwardConfig) -> torch.Tensor:
    """Return the (steps, batch, 1) stream of batches drawn from N(STREAM_MEAN, STREAM_STD²)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    return STREAM_MEAN + STREAM_STD * torch.randn(cfg.stream_steps, cfg.stream_batch_size, 1,
                                                  generator=gen, dtype=torch.float64)


def running_estimates(cfg: ForwardConfig) -> dict:
    """Return the running mean and variance of one BN feature after each batch of the stream,
    for every momentum of ``cfg`` and the cumulative average (momentum None); the same stream
    through Keras' and the paper's conventions; and the variance bias per batch size."""
    stream = _stream(cfg)
    out: dict = {"true_mean": STREAM_MEAN, "true_var": STREAM_STD ** 2,
                 "momenta": [*map(str, cfg.momenta), "None"]}
    for momentum in (*cfg.momenta, None):
        bn = norms.BatchNorm1d(1, momentum=momentum, affine=False, dtype=torch.float64)
        means, variances = [], []
        for batch in stream:
            bn.train()(batch)
            means.append(bn.running_mean.item())
            variances.append(bn.running_var.item())
        out[f"mean_{momentum}"] = np.array(means)
        out[f"var_{momentum}"] = np.array(variances)

    batch_means = stream.mean(1)[:, 0].numpy()
    batch_vars = stream.var(1, correction=0)[:, 0].numpy()  # biased, as the paper's σ²_B
    unbiased = stream.var(1, correction=1)[:, 0].numpy()
    # Keras with momentum 0.99 (Bessel-corrected variance, to compare like with like).
    moving_mean, moving_var, keras = 0.0, 1.0, []
    for mu, var in zip(batch_means, unbiased):
        moving_mean = keras_update(moving_mean, mu, 0.99)
        moving_var = keras_update(moving_var, var, 0.99)
        keras.append((moving_mean, moving_var))
    out["keras_0.99_mean"], out["keras_0.99_var"] = np.array(keras).T
    out["paper_mean"], out["paper_var"] = paper_population_stats(batch_means, batch_vars,
                                                                 cfg.stream_batch_size)
    # What the cumulative average would give if it averaged the biased batch variances.
    out["var_None_biased"] = np.cumsum(batch_vars) / np.arange(1, len(batch_vars) + 1)
    out.update(variance_bias(cfg))
    return out


def variance_bias(cfg: ForwardConfig) -> dict:
    """Return, per batch size N, the average biased and unbiased batch variance of N(0, 1)
    samples over ``cfg.bias_batches`` batches: E[biased] = 1 − 1/N, E[unbiased] = 1."""
    rng = np.random.default_rng(cfg.seed)
    sizes = np.array(cfg.bias_batch_sizes)
    biased, unbiased = [], []
    for n in sizes:
        x = rng.standard_normal((cfg.bias_batches, n))
        biased.append(x.var(axis=1, ddof=0).mean())
        unbiased.append(x.var(axis=1, ddof=1).mean())
    return {"bias_sizes": sizes, "bias_biased": np.array(biased),
            "bias_unbiased": np.array(unbiased)}
