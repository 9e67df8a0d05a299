"""Chapter 02: the forward pass of BN in training and at inference, and how it goes wrong.

Read top to bottom, in the chapter's order:

1. What training-mode BN reduces over (1d: the batch; 2d: the batch and every position) and
   that it really gives zero mean and unit variance per feature; gamma and beta can undo it.
2. Our module (``bn_utils.norms``) against torch's: outputs, gradients, running statistics.
3. Running statistics: the three momentum conventions (PyTorch, Keras, the paper), converted to
   PyTorch's, on a stream of batches from a known distribution; the bias of the batch variance.
4. Train vs eval: in training an example's output depends on its batch mates.
5. Three classic bugs, with the layers that have them (teaching code, named as such) and their
   measured symptoms: a pasted Keras momentum, an output computed only in the eval branch, and
   batch size 1.
6. At inference BN is an affine map, so it folds into the conv or linear layer before it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import data, models, norms, plotting, results, train
from ..profiles import SEED_MAX, Config, param

CHAPTER = "02_forward_pass"

# The known distribution of section 3's stream of batches.
STREAM_MEAN, STREAM_STD = 2.0, 3.0
# Section 5a: the PyTorch default, a Keras momentum pasted into PyTorch, and the opposite slip.
BUG_MOMENTA = {"0.1 (PyTorch default)": 0.1, "0.99 (Keras 0.99 pasted)": 0.99,
               "0.001 (too small)": 0.001}
# Section 5b: the three normalisations trained side by side.
EVAL_BRANCH_NETS = ("torch BN", "eval-branch BN (buggy)", "no BN")


@dataclass(frozen=True)
class ForwardConfig(Config):
    """The forward-pass chapter's experiments (defaults: the ``full`` profile)."""

    seed: int = param(0, "random seed (data subsets, initialisation, minibatches)", min=0, max=SEED_MAX)
    hidden: tuple = param((100, 100, 100), "hidden widths of the BN MLP (the paper's MNIST net)",
                          item_min=1)
    activation: str = param("sigmoid", "hidden nonlinearity", choices=tuple(models.ACTIVATIONS))
    batch_size: int = param(60, "minibatch size of the MLP (the paper's MNIST experiment)", min=2)
    lr: float = param(0.5, "SGD learning rate of the MLP", min=1e-6, max=100.0)
    steps: int = param(5000, "SGD steps of each MLP trained in sections 4 and 5", min=1)
    eval_every: int = param(100, "steps between measurements of section 5", min=1)
    n_train: int = param(60_000, "MNIST training images used", min=100, max=60_000)
    n_test: int = param(10_000, "MNIST test images used", min=10, max=10_000)
    compare_steps: int = param(5, "training steps of the ours-vs-torch comparison", min=1)
    stream_steps: int = param(2000, "batches in the running-statistics stream", min=2)
    stream_batch_size: int = param(8, "batch size of that stream (small: the variance bias shows)",
                                   min=2)
    momenta: tuple = param((0.1, 0.01), "PyTorch momenta compared with the cumulative average",
                           item_min=1e-6)
    bias_batch_sizes: tuple = param((2, 3, 4, 8, 16, 32, 64),
                                    "batch sizes of the variance-bias measurement", item_min=2)
    bias_batches: int = param(20_000, "batches averaged per batch size for the variance bias",
                              min=10)
    spread_batch_sizes: tuple = param((2, 4, 8, 16, 32, 64, 128, 256),
                                      "batch sizes of the train-vs-eval measurement", item_min=2)
    spread_draws: int = param(1000, "random sets of batch mates per example and batch size",
                              min=2)
    spread_examples: int = param(20, "test examples whose outputs we follow", min=1)
    bug_batch_size: int = param(16, "minibatch size of the momentum-bug runs (small: the "
                                    "symptoms grow as the batch shrinks)", min=2)
    bug_lr: float = param(2.0, "the high learning rate of the eval-branch bug", min=1e-6,
                          max=100.0)
    timing_batch: int = param(256, "images per timed inference batch of the conv net", min=1)
    timing_repeats: int = param(100, "timed repetitions (the median is reported)", min=1)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # the paper's protocol fits the 2-core CPU: the book shows the stored full record
        "reference": {},
        "quick": {"steps": 1000, "eval_every": 50, "n_train": 10_000, "n_test": 2000,
                  "stream_steps": 1000, "bias_batches": 4000, "spread_draws": 200,
                  "spread_examples": 8, "timing_batch": 128, "timing_repeats": 15},
        "smoke": {"steps": 100, "eval_every": 25, "n_train": 1000, "n_test": 200,
                  "stream_steps": 200, "bias_batch_sizes": (2, 4, 16), "bias_batches": 2000,
                  "spread_batch_sizes": (2, 8, 32, 128), "spread_draws": 20,
                  "spread_examples": 3, "timing_batch": 16, "timing_repeats": 3},
    }

    def validate(self) -> None:
        """Check that every batch fits in the data it is drawn from."""
        for name in ("batch_size", "bug_batch_size"):
            if getattr(self, name) > self.n_train:
                raise ValueError(f"parameter {name}={getattr(self, name)} must be <= "
                                 f"n_train={self.n_train}")
        if max(self.spread_batch_sizes) > self.n_train:
            raise ValueError(f"parameter spread_batch_sizes={self.spread_batch_sizes} must not "
                             f"exceed n_train={self.n_train} (batch mates come from it)")
        if self.spread_examples > self.n_test:
            raise ValueError(f"parameter spread_examples={self.spread_examples} must be <= "
                             f"n_test={self.n_test}")
        if any(m > 1 for m in self.momenta):
            raise ValueError(f"parameter momenta={self.momenta} must lie in (0, 1]")


def _mnist(cfg: ForwardConfig, device=None):
    """Return MNIST as flat float tensors on ``device`` (default: the CPU), ``cfg``'s subsets."""
    return data.tensors("mnist", device, flatten=True, n_train=cfg.n_train, n_test=cfg.n_test,
                        seed=cfg.seed)


def _bn_mlp(cfg: ForwardConfig, norm="bn", device=None) -> nn.Sequential:
    """Return the chapter's MLP (Linear → norm → activation per hidden layer), seeded."""
    train.seed_everything(cfg.seed)
    model = models.mlp((784, *cfg.hidden, 10), activation_name=cfg.activation, norm=norm)
    return model.to(device)


def _bn_layers(model: nn.Module) -> list[nn.Module]:
    """Return the BN layers of a model, in order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


# ---------------------------------------------------------------------------------------------
# 1. What is normalised over what
# ---------------------------------------------------------------------------------------------


def _stats_over(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the per-channel mean and biased std of x, over every dim but 1."""
    dims = [0, *range(2, x.dim())]
    return x.mean(dims), x.std(dims, correction=0)


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def normalisation_rows(cfg: ForwardConfig) -> list[dict]:
    """Return, for a dense (N, D) and a convolutional (N, C, H, W) input made from one real MNIST
    batch, what BN reduces over and each feature's mean and std before and after train-mode BN."""
    x_tr, _, _, _ = data.tensors("mnist", n_train=cfg.n_train, n_test=10, seed=cfg.seed)
    images = x_tr[: cfg.batch_size]
    train.seed_everything(cfg.seed)
    with torch.no_grad():
        dense = nn.Linear(784, cfg.hidden[0], bias=False)(images.flatten(1))
        conv = nn.Conv2d(1, 8, 5, bias=False)(images)
    rows = []
    for name, x, bn, reduced in (("BatchNorm1d", dense, norms.BatchNorm1d(dense.shape[1]), "N"),
                                 ("BatchNorm2d", conv, norms.BatchNorm2d(conv.shape[1]),
                                  "N, H, W")):
        with torch.no_grad():
            out = bn.train()(x)
        mean_in, std_in = _stats_over(x)
        mean_out, std_out = _stats_over(out)
        rows.append({
            "layer": name, "input shape": "×".join(map(str, x.shape)),
            "statistics shape": f"({x.shape[1]},)", "reduced over": reduced,
            "values per statistic": x.numel() // x.shape[1],
            "mean before (range)": f"{mean_in.min():.2f} … {mean_in.max():.2f}",
            "std before (range)": f"{std_in.min():.2f} … {std_in.max():.2f}",
            "max |mean| after": mean_out.abs().max().item(),
            "max |std − 1| after": (std_out - 1).abs().max().item(),
        })
    return rows


def identity_check(cfg: ForwardConfig) -> float:
    """Return max |BN(x) − x| for BN with γ = sqrt(σ²_B + ε) and β = μ_B: BN can be the identity."""
    gen = torch.Generator().manual_seed(cfg.seed)
    x = 3.0 * torch.randn(cfg.batch_size, 7, generator=gen, dtype=torch.float64) + 1.5
    bn = norms.BatchNorm1d(7, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.sqrt(x.var(0, correction=0) + bn.eps))
        bn.bias.copy_(x.mean(0))
        return (bn.train()(x) - x).abs().max().item()


# ---------------------------------------------------------------------------------------------
# 2. Our module against torch's
# ---------------------------------------------------------------------------------------------

COMPARISON_CASES = (  # (module, input shape, dtype, momentum)
    ("BatchNorm1d", (16, 10), torch.float32, 0.1),
    ("BatchNorm2d", (8, 6, 12, 12), torch.float32, 0.1),
    ("BatchNorm1d", (16, 10), torch.float32, None),
    ("BatchNorm2d", (8, 6, 12, 12), torch.float64, 0.1),
)


def compare_with_torch(module: str, shape: tuple, dtype: torch.dtype, momentum: float | None,
                       steps: int, seed: int = 0) -> dict:
    """Return the largest |ours − torch| of every quantity over ``steps`` SGD steps of one BN
    layer on random inputs, then in eval mode: outputs, ∂L/∂x, ∂L/∂γ, ∂L/∂β, running stats."""
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    ours = getattr(norms, module)(c, momentum=momentum, dtype=dtype)
    ref = getattr(nn, module)(c, momentum=momentum, dtype=dtype)
    with torch.no_grad():  # a non-trivial γ, β, the same in both
        gamma, beta = 1 + 0.5 * torch.randn(c, generator=gen), 0.5 * torch.randn(c, generator=gen)
        for m in (ours, ref):
            m.weight.copy_(gamma)
            m.bias.copy_(beta)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.1)
    worst = dict.fromkeys(("output", "∂L/∂x", "∂L/∂γ", "∂L/∂β", "running mean", "running var",
                           "eval output"), 0.0)

    def note(key, a, b):
        worst[key] = max(worst[key], (a - b).abs().max().item())

    for _ in range(steps):
        # Inputs far from standard (mean 2, std 3), so normalising has work to do.
        x = (2 + 3 * torch.randn(shape, generator=gen)).to(dtype)
        dout = torch.randn(shape, generator=gen).to(dtype)
        outs, grads = [], []
        for m, opt in ((ours, opt_ours), (ref, opt_ref)):
            xi = x.clone().requires_grad_(True)
            out = m.train()(xi)
            opt.zero_grad()
            out.backward(dout)
            outs.append(out.detach())
            grads.append((xi.grad, m.weight.grad.clone(), m.bias.grad.clone()))
            opt.step()
        note("output", *outs)
        for key, a, b in zip(("∂L/∂x", "∂L/∂γ", "∂L/∂β"), *grads):
            note(key, a, b)
        note("running mean", ours.running_mean, ref.running_mean)
        note("running var", ours.running_var, ref.running_var)
    x = (2 + 3 * torch.randn(shape, generator=gen)).to(dtype)
    with torch.no_grad():
        note("eval output", ours.eval()(x), ref.eval()(x))
    return worst


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def torch_comparison_rows(cfg: ForwardConfig) -> list[dict]:
    """Return one row per case of ``COMPARISON_CASES``: the largest |ours − torch| per quantity."""
    rows = []
    for module, shape, dtype, momentum in COMPARISON_CASES:
        diffs = compare_with_torch(module, shape, dtype, momentum, cfg.compare_steps, cfg.seed)
        rows.append({"module": module, "input": "×".join(map(str, shape)),
                     "dtype": str(dtype).removeprefix("torch."), "momentum": str(momentum),
                     **diffs})
    return rows


# ---------------------------------------------------------------------------------------------
# 3. Running statistics: three conventions, converted to PyTorch's
# ---------------------------------------------------------------------------------------------


def keras_to_torch_momentum(keras_momentum: float) -> float:
    """Return the PyTorch momentum equal to a Keras one: Keras keeps m of the old value, PyTorch
    takes m of the new batch, so m_torch = 1 − m_keras (Keras 0.99 ≡ PyTorch 0.01)."""
    if not 0 <= keras_momentum <= 1:
        raise ValueError(f"keras_momentum={keras_momentum!r} must lie in [0, 1]")
    return 1.0 - keras_momentum


def torch_to_keras_momentum(torch_momentum: float) -> float:
    """Return the Keras momentum equal to a PyTorch one: 1 − m (PyTorch 0.1 ≡ Keras 0.9)."""
    if not 0 <= torch_momentum <= 1:
        raise ValueError(f"torch_momentum={torch_momentum!r} must lie in [0, 1]")
    return 1.0 - torch_momentum


def torch_update(running, batch, momentum: float):
    """Return PyTorch's running estimate after one batch: (1 − m)·running + m·batch."""
    return (1 - momentum) * running + momentum * batch


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


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
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


def run_running_estimates(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``running_estimates`` for ``cfg``, computing it if needed."""
    return results.load_or_run(CHAPTER, "running_estimates", cfg, running_estimates,
                               prefer_full=True)


def convention_checks(record: results.Record) -> dict:
    """Return max |difference| of Keras 0.99 vs PyTorch 0.01 (running mean and variance) and of
    the paper's population statistics vs PyTorch's cumulative average (momentum None)."""
    out = {}
    if "0.01" in record["momenta"]:
        out["keras 0.99 vs torch 0.01"] = max(
            np.abs(record["keras_0.99_mean"] - record["mean_0.01"]).max(),
            np.abs(record["keras_0.99_var"] - record["var_0.01"]).max())
    out["paper vs torch None"] = max(abs(record["paper_mean"] - record["mean_None"][-1]),
                                     abs(record["paper_var"] - record["var_None"][-1]))
    return out


def plot_running_estimates(record: results.Record):
    """Figure: running mean and variance over the stream per momentum, and the variance bias."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    steps = np.arange(1, len(record["mean_None"]) + 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, m in zip(colors, record["momenta"]):
        label = "momentum None (cumulative average)" if m == "None" else f"momentum {m}"
        axes[0].plot(steps, record[f"mean_{m}"], color=color, label=label, lw=1)
        axes[1].plot(steps, record[f"var_{m}"], color=color, label=label, lw=1)
    axes[1].plot(steps, record["var_None_biased"], color="0.4", ls=":", lw=1.2,
                 label="cumulative average of biased variances")
    for ax, true in ((axes[0], record["true_mean"]), (axes[1], record["true_var"])):
        ax.axhline(true, color="k", ls="--", lw=1, label="true value")
        ax.set_xscale("log")
    n = np.array(record["bias_sizes"])
    grid = np.linspace(n.min(), n.max(), 200)
    axes[2].plot(grid, 1 - 1 / grid, color="k", ls="--", lw=1, label="theory: 1 − 1/N")
    axes[2].plot(n, record["bias_biased"], "o", color=colors[0], label="biased (÷N), measured")
    axes[2].plot(n, record["bias_unbiased"], "s", color=colors[1],
                 label="unbiased (÷(N − 1)), measured")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(n, [str(v) for v in n])
    batch = record.config["stream_batch_size"]
    plotting.label(axes[0], title=f"Running mean (batches of {batch})",
                   xlabel="batches seen", ylabel="estimate of E[x]", legend=False)
    plotting.label(axes[1], title=f"Running variance (batches of {batch})",
                   xlabel="batches seen", ylabel="estimate of Var[x]", legend=False)
    axes[0].legend(loc="lower right")
    axes[1].legend(loc="lower right", fontsize=8)
    plotting.label(axes[2], title="Average batch variance of N(0, 1) samples",
                   xlabel="batch size N", ylabel="E[batch variance] / true variance")
    plotting.caption(fig, f"Stream: N({STREAM_MEAN:g}, {STREAM_STD:g}²), running stats start at "
                          f"mean 0, var 1. Source: {record.caption()}")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# 4. Train vs eval: an example's output depends on its batch mates
# ---------------------------------------------------------------------------------------------


def stacked_train_forward(model: nn.Sequential, batches: torch.Tensor) -> torch.Tensor:
    """Return the train-mode outputs of ``model`` on K independent batches (K, B, D) at once,
    each normalised with its own statistics; the running statistics are not touched."""
    h = batches
    for layer in model:
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            mean = h.mean(1, keepdim=True)
            var = h.var(1, keepdim=True, correction=0)
            h = (h - mean) * torch.rsqrt(var + layer.eps)
            if layer.weight is not None:
                h = h * layer.weight
            if layer.bias is not None:
                h = h + layer.bias
        else:
            h = layer(h)  # Linear and elementwise nonlinearities act on the last dim
    return h


def batch_dependence(model: nn.Sequential, examples: torch.Tensor, pool: torch.Tensor,
                     batch_sizes, draws: int, seed: int = 0) -> dict:
    """Return how the train-mode output of each example varies with its batch mates.

    For every batch size B, each example goes into ``draws`` batches with B − 1 mates drawn from
    ``pool``. Returns ``outputs`` (sizes, examples, draws, classes), the eval-mode outputs
    (examples, classes) and ``spread``: per batch size, the std over draws averaged over classes
    and examples."""
    gen = torch.Generator().manual_seed(seed)
    # The layers before the first BN see one example at a time: run them once on the pool.
    first_bn = next(i for i, m in enumerate(model)
                    if isinstance(m, nn.modules.batchnorm._BatchNorm))
    head, tail = model[:first_bn], model[first_bn:]
    per_size = []
    with torch.no_grad():
        pool_h, examples_h = head(pool), head(examples)
        for b in batch_sizes:
            outs = []
            for ex in examples_h:
                mates = pool_h[torch.randint(len(pool_h), (draws, b - 1), generator=gen)]
                batch = torch.cat([ex.expand(draws, 1, -1), mates], dim=1)
                outs.append(stacked_train_forward(tail, batch)[:, 0])
            per_size.append(torch.stack(outs))
        was_training = model.training
        eval_out = model.eval()(examples)
        model.train(was_training)
    outputs = torch.stack(per_size).cpu()  # (sizes, examples, draws, classes)
    eval_out = eval_out.cpu()
    spread = outputs.std(2).mean((1, 2))
    offset = (outputs.mean(2) - eval_out).abs().mean((1, 2))
    return {"batch_sizes": np.array(batch_sizes), "outputs": outputs.numpy(),
            "eval_outputs": eval_out.numpy(), "spread": spread.numpy(), "offset": offset.numpy()}


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def measure_batch_dependence(cfg: ForwardConfig) -> dict:
    """Train the BN MLP for ``cfg.steps`` steps, then return its ``batch_dependence`` on
    ``cfg.spread_examples`` test images (batch mates from the training set) and its accuracy."""
    device = train.default_device()
    x_tr, y_tr, x_te, y_te = _mnist(cfg, device)
    model = _bn_mlp(cfg, device=device)
    hist = train.fit(model, data.batches(x_tr, y_tr, cfg.batch_size, seed=cfg.seed),
                     steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
                     progress="BN MLP")
    out = batch_dependence(model, x_te[: cfg.spread_examples], x_tr, cfg.spread_batch_sizes,
                           cfg.spread_draws, cfg.seed)
    out["labels"] = y_te[: cfg.spread_examples].cpu().numpy()
    # Store the one example the figure shows, not every logit of every draw (megabytes at full).
    out["example_logits"] = out.pop("outputs")[:, 0, :, int(out["labels"][0])]  # (sizes, draws)
    out["test_accuracy"] = train.accuracy(model, x_te, y_te)
    out["train_seconds"] = hist.seconds
    return out


def run_batch_dependence(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``measure_batch_dependence`` for ``cfg`` (run if needed)."""
    return results.load_or_run(CHAPTER, "batch_dependence", cfg, measure_batch_dependence,
                               prefer_full=True)


def plot_batch_dependence(record: results.Record):
    """Figure: one example's true-class logit over random batches per batch size (vs its eval
    value), and the spread of train-mode outputs against batch size."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    sizes = np.array(record["batch_sizes"])
    label = int(record["labels"][0])
    logits = record["example_logits"]  # (sizes, draws): example 0's true-class logit
    pos = np.arange(len(sizes))
    axes[0].violinplot(list(logits), positions=pos, showmedians=True)
    axes[0].axhline(record["eval_outputs"][0, label], color=plotting.COLORS["bn"], ls="--",
                    label="eval mode (running statistics)")
    axes[0].set_xticks(pos, [str(s) for s in sizes])
    spread = np.array(record["spread"])
    axes[1].loglog(sizes, spread, "o-", color=plotting.COLORS["bn"],
                   label="std over batch mates (train mode)")
    axes[1].loglog(sizes, np.array(record["offset"]), "s-", color=plotting.COLORS["other"],
                   label="|mean over batch mates − eval output|")
    axes[1].loglog(sizes, spread[0] * np.sqrt(sizes[0] / sizes), color="0.5", ls=":",
                   label="∝ 1/√B")
    axes[1].set_xticks(sizes, [str(s) for s in sizes])
    plotting.label(axes[0], title=f"One test image (a {label}): train-mode output over random "
                                  "batches", xlabel="batch size B",
                   ylabel=f"logit of class {label}")
    plotting.label(axes[1], title="How much the batch mates move the output",
                   xlabel="batch size B", ylabel="logit difference (avg over classes, images)")
    plotting.caption(fig, f"MNIST {record.config['activation']} BN MLP after "
                          f"{record.config['steps']} steps; {record.config['spread_draws']} random "
                          f"batches per size. Source: {record.caption()}")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# 5. Three classic bugs (teaching code: these layers are wrong on purpose)
# ---------------------------------------------------------------------------------------------

# 5a. Momentum convention inverted -------------------------------------------------------------


def pasted_keras_momentum_bn(width: int, keras_momentum: float = 0.99) -> nn.BatchNorm1d:
    """BUGGY on purpose: return torch's BatchNorm1d given a Keras momentum unconverted, so its
    running statistics keep 1 − m of the past and take m of the latest batch."""
    return nn.BatchNorm1d(width, momentum=keras_momentum)


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def last_batch_gap(momentum: float, batches: int = 500, batch_size: int = 16,
                   seed: int = 0) -> dict:
    """Return, for torch's BatchNorm1d with ``momentum`` after ``batches`` batches of N(0, 1) data
    (8 features), max |running mean − the last batch's mean| and max |running mean − 0|, the
    population mean."""
    gen = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm1d(8, momentum=momentum).train()
    with torch.no_grad():
        for _ in range(batches):
            x = torch.randn(batch_size, 8, generator=gen)
            bn(x)
    return {"|running − last batch mean|": (bn.running_mean - x.mean(0)).abs().max().item(),
            "|running − population mean|": bn.running_mean.abs().max().item()}


def precise_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Return a copy of ``model`` in eval mode whose BN layers hold the population statistics of
    their inputs over ``x`` (each layer's inputs computed with the layers below normalised by
    their own population statistics): what the running statistics try to estimate."""
    exact = copy.deepcopy(model)
    for bn in _bn_layers(exact):
        bn.reset_running_stats()
        bn.momentum = None  # the cumulative average of one batch: that batch's statistics
    exact.train()
    with torch.no_grad():
        exact(x)  # one batch of all of x: train-mode BN normalises with population statistics
    return exact.eval()


def running_stat_errors(model: nn.Module, exact: nn.Module) -> dict:
    """Return how far ``model``'s running statistics are from ``exact``'s (from ``precise_bn``):
    the mean |Δmean| in population standard deviations and the mean |log(var / true var)|."""
    mean_err, var_err = [], []
    for bn, ref in zip(_bn_layers(model), _bn_layers(exact)):
        std = ref.running_var.sqrt()
        mean_err.append(((bn.running_mean - ref.running_mean).abs() / std).mean().item())
        var_err.append((bn.running_var / ref.running_var).log().abs().mean().item())
    return {"mean_error": float(np.mean(mean_err)), "var_error": float(np.mean(var_err))}


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def momentum_bug_runs(cfg: ForwardConfig) -> dict:
    """Train the BN MLP once per momentum of ``BUG_MOMENTA`` (same seed, same batches) and return,
    every ``eval_every`` steps, the running statistics' error against the population statistics of
    the full training subset, the test accuracy, and that of the same weights with exact
    statistics."""
    device = train.default_device()
    x_tr, y_tr, x_te, y_te = _mnist(cfg, device)
    out, final_weights = {}, []
    for label, momentum in BUG_MOMENTA.items():
        model = _bn_mlp(cfg, norm=lambda w, m=momentum: nn.BatchNorm1d(w, momentum=m),
                        device=device)

        def eval_fn(m: nn.Module) -> dict:
            exact = precise_bn(m, x_tr)
            return {**running_stat_errors(m, exact),
                    "test_accuracy": train.accuracy(m, x_te, y_te),
                    "exact_accuracy": train.accuracy(exact, x_te, y_te)}

        hist = train.fit(model, data.batches(x_tr, y_tr, cfg.bug_batch_size, seed=cfg.seed),
                         steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
                         eval_fn=eval_fn, eval_every=cfg.eval_every,
                         progress=f"momentum {momentum}")
        out[label] = hist.to_dict()
        final_weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    # Momentum only touches the running statistics, which training never reads.
    out["max_weight_difference"] = max((w - final_weights[0]).abs().max().item()
                                       for w in final_weights)
    return out


def run_momentum_bugs(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``momentum_bug_runs`` for ``cfg``, running it if needed."""
    return results.load_or_run(CHAPTER, "momentum_bugs", cfg, momentum_bug_runs, prefer_full=True)


def momentum_bug_table(record: results.Record) -> dict:
    """Return, per momentum, the running-statistic errors and the eval-accuracy gap to exact
    statistics, averaged over the second half of training, and the final test accuracy."""
    rows = {}
    for label in BUG_MOMENTA:
        ev = record[label]["evals"]
        half = len(ev["test_accuracy"]) // 2
        gap = np.array(ev["test_accuracy"][half:]) - np.array(ev["exact_accuracy"][half:])
        rows[label] = {"running-mean error (σ)": float(np.mean(ev["mean_error"][half:])),
                       "running-var error |log ratio|": float(np.mean(ev["var_error"][half:])),
                       "mean |accuracy gap|": float(np.mean(np.abs(gap))),
                       "std of accuracy gap": float(np.std(gap)),
                       "final test accuracy": ev["test_accuracy"][-1],
                       "with exact statistics": ev["exact_accuracy"][-1]}
    return rows


def plot_momentum_bugs(record: results.Record):
    """Figure: running-statistic errors and test accuracy over training, per momentum."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, label in zip(colors, BUG_MOMENTA):
        h = record[label]
        steps, ev = np.array(h["eval_step"][1:]), h["evals"]
        axes[0].plot(steps, ev["mean_error"][1:], color=color)
        axes[1].plot(steps, ev["var_error"][1:], color=color)
        axes[2].plot(steps, ev["test_accuracy"][1:], color=color, label=f"momentum {label}")
    first = record[next(iter(BUG_MOMENTA))]
    axes[2].plot(first["eval_step"][1:], first["evals"]["exact_accuracy"][1:], color="k",
                 ls="--", lw=1, label="exact population statistics")
    for ax in axes[:2]:
        ax.set_yscale("log")
    plotting.label(axes[0], title="Error of the running mean", xlabel="training step",
                   ylabel="mean |Δμ| / σ (population)")
    plotting.label(axes[1], title="Error of the running variance", xlabel="training step",
                   ylabel="mean |log(running var / true var)|")
    plotting.label(axes[2], title="Test accuracy in eval mode (legend for all panels)",
                   xlabel="training step", ylabel="accuracy", legend=False)
    axes[2].legend(loc="lower right")
    plotting.caption(fig, f"MNIST {record.config['activation']} BN MLP, batch size "
                          f"{record.config['bug_batch_size']}, the same weights in all three "
                          "runs. "
                          f"Source: {record.caption()}")
    fig.tight_layout()
    return fig


# 5b. Output computed only in the eval branch ------------------------------------------------


class EvalBranchBatchNorm1d(nn.Module):
    """BUGGY on purpose: a hand-written BN whose output is computed only as in eval mode.

    In training it updates the running statistics from the batch, as it should, but then
    normalises with the running statistics instead of the batch's, so the output is not
    normalised per batch and no gradient flows through the batch statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return γ·(x − running mean)/sqrt(running var + ε) + β, in training too (the bug)."""
        if self.training:
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * x.mean(0))
                self.running_var.mul_(1 - m).add_(m * x.var(0, correction=1))
        # BUG: this line belongs to the eval branch; training should use the batch's statistics.
        xhat = (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps)
        return self.weight * xhat + self.bias


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def eval_branch_symptoms(cfg: ForwardConfig) -> list[dict]:
    """Return, for torch's BN, ours and the eval-branch BN on one real batch of first-layer
    pre-activations in train mode: the output's per-feature mean and std, its difference from
    torch's output and |Σ_batch ∂L/∂x| (zero when the gradient flows through the batch mean)."""
    x_tr, _, _, _ = _mnist(cfg)
    train.seed_everything(cfg.seed)
    with torch.no_grad():
        x = nn.Linear(784, cfg.hidden[0], bias=False)(x_tr[: cfg.batch_size])
    dout = torch.randn(x.shape, generator=torch.Generator().manual_seed(cfg.seed))
    width = x.shape[1]
    layers = {"torch.nn.BatchNorm1d": nn.BatchNorm1d(width),
              "bn_utils.norms.BatchNorm1d": norms.BatchNorm1d(width),
              "EvalBranchBatchNorm1d (buggy)": EvalBranchBatchNorm1d(width)}
    rows, ref = [], None
    for name, layer in layers.items():
        xi = x.clone().requires_grad_(True)
        out = layer.train()(xi)
        out.backward(dout)
        ref = out.detach() if ref is None else ref
        mean, std = _stats_over(out.detach())
        rows.append({"layer": name, "mean of output (avg |·|)": mean.abs().mean().item(),
                     "std of output (avg)": std.mean().item(),
                     "max |out − torch|": (out.detach() - ref).abs().max().item(),
                     "max |Σ ∂L/∂x| over batch": xi.grad.sum(0).abs().max().item()})
    return rows


def saturation(model: nn.Sequential, x: torch.Tensor) -> float | None:
    """Return the fraction of hidden sigmoid outputs on x (eval mode) within 0.01 of 0 or 1,
    where the sigmoid's gradient is below 0.01 (None if the model has no sigmoids)."""
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o))
             for m in model if isinstance(m, nn.Sigmoid)]
    was_training = model.training
    try:
        with torch.inference_mode():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not outs:
        return None  # no sigmoids (another activation): nothing to measure
    return float(np.mean([((o < 0.01) | (o > 0.99)).float().mean().item() for o in outs]))


def hidden_weight_norm(model: nn.Sequential) -> float:
    """Return the largest Frobenius norm of the weights of the hidden (non-output) linear layers."""
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    return max(m.weight.detach().norm().item() for m in linears)


@train.cpu_threads(1)  # small tensors: one thread (see train.cpu_threads)
def eval_branch_training(cfg: ForwardConfig) -> dict:
    """Train the MLP with torch's BN, the eval-branch BN and no BN, at ``cfg.lr`` and at the high
    ``cfg.bug_lr``, from the same initial weights and batches; return each run's History, with
    test accuracy, hidden weight norm and sigmoid saturation at the start and the end."""
    device = train.default_device()
    x_tr, y_tr, x_te, y_te = _mnist(cfg, device)
    norms_by_name = {"torch BN": "bn", "eval-branch BN (buggy)": EvalBranchBatchNorm1d,
                     "no BN": "none"}

    def eval_fn(m: nn.Module) -> dict:
        return {"test_accuracy": train.accuracy(m, x_te, y_te),
                "weight_norm": hidden_weight_norm(m), "saturation": saturation(m, x_te[:1000])}

    out = {}
    for lr in (cfg.lr, cfg.bug_lr):
        for name in EVAL_BRANCH_NETS:
            model = _bn_mlp(cfg, norm=norms_by_name[name], device=device)
            hist = train.fit(model, data.batches(x_tr, y_tr, cfg.batch_size, seed=cfg.seed),
                             steps=cfg.steps, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                             eval_fn=eval_fn, log_every=max(1, cfg.steps // 50),
                             progress=f"{name}, lr {lr}")
            out[f"{name} @ lr {lr:g}"] = hist.to_dict()
    return out


def run_eval_branch(cfg: ForwardConfig) -> results.Record:
    """Return the stored record of ``eval_branch_training`` for ``cfg``, running it if needed."""
    return results.load_or_run(CHAPTER, "eval_branch", cfg, eval_branch_training, prefer_full=True)


def eval_branch_table(record: results.Record) -> dict:
    """Return, per run, the final train loss (mean of the last logged interval), whether it
    diverged, the final test accuracy, hidden weight norm and fraction of saturated sigmoids."""
    rows = {}
    runs = record.metrics if isinstance(record, results.Record) else record  # or the raw dict
    for key, h in runs.items():
        ev = h["evals"]
        rows[key] = {"final train loss": h["loss"][-1] if h["loss"] else float("nan"),
                     "diverged": "yes" if h["diverged"] else "no",
                     "final test accuracy": ev["test_accuracy"][-1],
                     "hidden weight norm": ev["weight_norm"][-1],
                     "saturated sigmoids": ev["saturation"][-1]}
    return rows


def plot_eval_branch(record: results.Record):
    """Figure: training loss of the three normalisations, at the usual and at the high LR."""
    import matplotlib.pyplot as plt

    lrs = (record.config["lr"], record.config["bug_lr"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    colors = {"torch BN": plotting.COLORS["bn"], "no BN": plotting.COLORS["no_bn"],
              "eval-branch BN (buggy)": plotting.COLORS["noisy_bn"]}
    for ax, lr in zip(axes, lrs):
        for name in EVAL_BRANCH_NETS:
            h = record[f"{name} @ lr {lr:g}"]
            loss = np.array(h["loss"], dtype=float)
            ax.plot(h["step"], np.clip(loss, None, 10.0), color=colors[name],
                    label=name + (" (diverged)" if h["diverged"] else ""))
        ax.set_yscale("log")
        plotting.label(ax, title=f"SGD learning rate {lr:g}", xlabel="training step",
                       ylabel="train loss (cross-entropy, clipped at 10)")
    plotting.caption(fig, f"MNIST {record.config['activation']} MLP, batch size "
                          f"{record.config['batch_size']}. Source: {record.caption()}")
    fig.tight_layout()
    return fig


# 5c. Batch size 1 ------------------------------------------------------------------------------


def _outcome(layer: nn.Module, x: torch.Tensor) -> str:
    """Return ``ok`` if layer(x) runs, else the type and message of the error it raises."""
    try:
        with torch.no_grad():
            layer(x)
    except (ValueError, RuntimeError) as err:
        return f"{type(err).__name__}: {err}"
    return "ok"


BATCH_ONE_CASES = (  # (module, input shape, mode)
    ("BatchNorm1d", (1, 4), "train"),
    ("BatchNorm2d", (1, 4, 1, 1), "train"),
    ("BatchNorm2d", (1, 4, 5, 5), "train"),
    ("BatchNorm1d", (1, 4), "eval"),
)


def batch_size_one_rows(seed: int = 0) -> list[dict]:
    """Return, for each case of ``BATCH_ONE_CASES``, what torch's and our BN do with it."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for module, shape, mode in BATCH_ONE_CASES:
        x = torch.randn(shape, generator=gen)
        theirs = getattr(nn, module)(shape[1]).train(mode == "train")
        ours = getattr(norms, module)(shape[1]).train(mode == "train")
        rows.append({"module": module, "input": "×".join(map(str, shape)), "mode": mode,
                     "values per channel": x.numel() // shape[1],
                     "torch": _outcome(theirs, x), "ours": _outcome(ours, x)})
    return rows


def single_image_is_instance_norm(seed: int = 0) -> float:
    """Return max |BN2d(x) − InstanceNorm2d(x)| for one image x in train mode: with N = 1 the
    per-channel statistics are that image's own, over its H·W positions."""
    x = torch.randn(1, 3, 6, 5, generator=torch.Generator().manual_seed(seed)) * 2 + 1
    with torch.no_grad():
        return (norms.BatchNorm2d(3).train()(x) - F.instance_norm(x)).abs().max().item()


# ---------------------------------------------------------------------------------------------
# 6. Inference: BN is an affine map, and folds into the layer before it
# ---------------------------------------------------------------------------------------------


def small_convnet(channels: tuple = (32, 64, 64)) -> nn.Sequential:
    """Return a small MNIST conv net: (Conv 3×3 → BN → ReLU) per width, pooling, a linear head."""
    layers: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(channels):
        layers += [nn.Conv2d(c_in, c, 3, padding=1, stride=1 if i == 0 else 2, bias=False),
                   nn.BatchNorm2d(c), nn.ReLU()]
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
    return nn.Sequential(*layers)


def fold_model(model: nn.Sequential) -> nn.Sequential:
    """Return a copy of ``model`` with every (Conv2d or Linear, BN) pair replaced by one layer with
    the BN's eval-mode affine map folded in (``norms.fold_batchnorm``)."""
    layers, i = [], 0
    mods = list(model)
    while i < len(mods):
        layer = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and isinstance(
                nxt, nn.modules.batchnorm._BatchNorm):
            layers.append(norms.fold_batchnorm(layer, nxt))
            i += 2
        else:
            layers.append(copy.deepcopy(layer))
            i += 1
    return nn.Sequential(*layers).eval()


def _prepared_convnet(cfg: ForwardConfig) -> tuple[nn.Sequential, torch.Tensor]:
    """Return the small conv net with non-trivial γ, β and running statistics (from a few
    train-mode passes over MNIST batches), in eval mode, and a batch of test images."""
    x_tr, _, x_te, _ = data.tensors("mnist", n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    train.seed_everything(cfg.seed)
    model = small_convnet()
    with torch.no_grad():
        for bn in _bn_layers(model):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.3)
        model.train()
        for start in range(0, 3 * 64, 64):
            model(x_tr[start: start + 64])
    images = x_te[: cfg.timing_batch]
    if len(images) < cfg.timing_batch:  # a small test subset: repeat it to fill the batch
        images = images.repeat(-(-cfg.timing_batch // len(images)), 1, 1, 1)[: cfg.timing_batch]
    return model.eval(), images


def fold_check(cfg: ForwardConfig) -> dict:
    """Return max |folded − unfolded| of the small conv net's eval outputs (absolute, and relative
    to the largest output) and max |bn(x) − (scale·x + shift)| of one BN layer (``bn_affine``)."""
    model, images = _prepared_convnet(cfg)
    folded = fold_model(model)
    with torch.inference_mode():
        ref, out = model(images), folded(images)
        bn = model[1]
        h = model[0](images)
        scale, shift = norms.bn_affine(bn)
        affine = (bn(h) - (h * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1))).abs().max()
    return {"max |folded − unfolded|": (out - ref).abs().max().item(),
            "largest |output|": ref.abs().max().item(),
            "max |bn(x) − (scale·x + shift)|": affine.item(),
            "layers before": len(model), "layers after": len(folded)}


def fold_timing(cfg: ForwardConfig) -> list[dict]:
    """Return the median inference time of the conv net on one batch, unfolded and folded
    (channels_last, inference_mode; printed, not asserted: timings depend on the machine).

    The two networks run alternately, so that a machine busy with other work slows both alike."""
    device = train.default_device()
    model, images = _prepared_convnet(cfg)
    nets = {"conv → BN (unfolded)": model, "BN folded into conv": fold_model(model)}
    images = images.to(device).contiguous(memory_format=torch.channels_last)
    nets = {k: v.to(device).to(memory_format=torch.channels_last) for k, v in nets.items()}

    def seconds(net: nn.Module) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            net(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    times = {k: [] for k in nets}
    for net in nets.values():
        seconds(net)  # warm-up: allocations and lazy initialisation are not what we time
    for _ in range(cfg.timing_repeats):
        for name, net in nets.items():
            times[name].append(seconds(net))
    rows = [{"network": k, "median ms per batch": float(np.median(v)) * 1e3}
            for k, v in times.items()]
    base = rows[0]["median ms per batch"]
    for row in rows:
        row["speed-up"] = base / row["median ms per batch"]
    return rows
