"""Stored metrics are strict JSON: NaN and ±inf (a diverged run's loss) are stored as null.
(Kept apart from test_results.py, which the main branch has and this branch does not.)"""

import json
from dataclasses import dataclass

import numpy as np

from bn_utils import results
from bn_utils.profiles import Config, param


@dataclass(frozen=True)
class Tiny(Config):
    steps: int = param(3, "steps", min=1)


def test_non_finite_metrics_are_stored_as_null():
    out = {"loss": [1.0, float("inf"), float("nan"), -float("inf"), np.float32("inf")],
           "ok": np.float64(2.5)}
    record = results.save("00_test", "run", Tiny(profile="smoke"), out)
    doc = json.loads(record.path.read_text())
    assert doc["metrics"]["loss"] == [1.0, None, None, None, None]
    assert doc["metrics"]["ok"] == 2.5
