"""Chapter 07's configuration (the paper's protocol is the ``full`` profile), the networks it
compares and the paper's numbers it cites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...nn import models
from ...nn.variants import N_MU, N_SIGMA, R_MU, R_SIGMA
from ...book.profiles import param
from .. import santurkar

CHAPTER = "07_santurkar_noise"
NOISE_NETS = ("none", "bn", "noisy_bn", "noise")
ICS_NETS = ("none", "bn")
PERCENTILES = (5, 15, 50, 85, 95)


@dataclass(frozen=True)
class NoiseConfig(santurkar.SanturkarConfig):
    """Chapter 7's experiments (defaults: the paper's protocol, the ``full`` profile)."""

    vgg_lrs: tuple = param((0.1, 0.01), "VGG learning rates: the noise comparison uses the first, "
                                        "the ICS figure all (standard and BN)", item_min=1e-6,
                           max=100.0)
    dln_lrs: tuple = param((1e-6, 1e-7), "DLN learning rates (ICS figure)", item_min=1e-12,
                           max=100.0)
    ics_layers: tuple = param((5, 10), "VGG layers whose ICS is measured (1 = first conv)", item_min=1,
                              max=1000)
    dln_ics_layers: tuple = param((9, 17), "DLN layers whose ICS is measured", item_min=1, max=1000)
    watch_layers: tuple = param((2, 9, 13), "VGG conv layers whose input distribution we plot", item_min=1,
                                max=1000)
    noise_n_mu: float = param(N_MU, "noise: bound on the centre ν̄ of a unit's noise, redrawn every "
                                    "step, ν̄ ~ U(−n_μ, n_μ)", min=0.0, max=100.0)
    noise_n_sigma: float = param(N_SIGMA, "noise: bound on the scale s̄ of a unit's noise, redrawn every "
                                          "step, s̄ ~ U(1, n_σ)", min=1.0, max=100.0)
    noise_r_mu: float = param(R_MU, "noise: per-activation shift ν ~ U(ν̄ − r_μ, ν̄ + r_μ)", min=0.0,
                              max=100.0)
    noise_r_sigma: float = param(R_SIGMA, "noise: per-activation scale s ~ N(s̄, r_σ)", min=0.0,
                                 max=100.0)

    PROFILES: ClassVar[dict] = {
        "full": {},
        # reference: the paper's VGG-16 layout at a quarter of the channels on all 50,000 images,
        # one seed; each VGG run <= 30 min and the chapter <= 2 h on an idle 2-core CPU
        # (estimated from contended pilots: the chapter's notes)
        "reference": {"vgg": "vgg16", "width": 0.25, "vgg_steps": 2500, "eval_every": 250,
                      "measure_every": 100, "train_probe": 2000, "seeds": (0,)},
        # quick/smoke: a VGG-11 (8 convolutions), whose standard version leaves the flat start
        # of training within the few hundred steps a CPU can afford; the layers watched and
        # measured sit at about the same relative depths as the paper's in VGG-16
        "quick": {"vgg": "vgg11", "width": 0.125, "vgg_steps": 200, "n_train": 8192, "n_test": 1000,
                  "train_probe": 500, "eval_every": 40, "measure_every": 40, "dln_steps": 600,
                  "dln_measure_every": 40, "seeds": (0,), "ics_layers": (3, 6),
                  "watch_layers": (2, 6, 8)},
        "smoke": {"vgg": "vgg11", "width": 0.03125, "batch_size": 32, "vgg_steps": 8, "n_train": 256,
                  "n_test": 100, "train_probe": 100, "eval_every": 4, "measure_every": 4,
                  "dln_steps": 20, "dln_measure_every": 10, "seeds": (0,), "ics_layers": (3, 6),
                  "watch_layers": (2, 6, 8)},
    }
    # reference: seeds 1 and 2 of the networks whose comparisons need a spread (the four VGGs at
    # the first LR, where the standard and BN networks both learn, and the cheap DLNs), each
    # stored as its own record (santurkar.SanturkarConfig.extra_configs; tools/train_runs.py)
    EXTRA_SEEDS: ClassVar[dict] = {"reference": (1, 2)}

    def validate(self) -> None:
        """Check that the watched layers exist in the networks."""
        super().validate()
        n_conv = sum(1 for e in models.VGG_CONFIGS[self.vgg] if e != "M")
        for name, layers, top in (("ics_layers", self.ics_layers, n_conv + 1),
                                  ("watch_layers", self.watch_layers, n_conv),
                                  ("dln_ics_layers", self.dln_ics_layers, self.dln_depth)):
            if max(layers) > top:
                raise ValueError(f"parameter {name}={layers} must be <= {top} for this network")

    def norm_kwargs(self, norm: str) -> dict:
        """Return the noise constants for the noisy layers."""
        if norm in ("noisy_bn", "noise"):
            return {"n_mu": self.noise_n_mu, "n_sigma": self.noise_n_sigma,
                    "r_mu": self.noise_r_mu, "r_sigma": self.noise_r_sigma}
        return {}
