"""Storage details: strict JSON (NaN and ±inf, e.g. a diverged run's loss, are stored as null);
file names keep profile and digest whatever the name.
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


def test_names_with_dots_keep_their_profile_and_digest_in_the_file_name():
    a, b = Tiny(profile="smoke", steps=1), Tiny(profile="smoke", steps=2)
    ra = results.save("00_test", "dropout-0.05", a, {"x": 1})
    rb = results.save("00_test", "dropout-0.05", b, {"x": 2})
    assert ra.path != rb.path and ra.path.name == f"dropout-0.05__smoke__{a.digest()}.json"
    assert results.load("00_test", "dropout-0.05", a).metrics == {"x": 1}
    assert results.checkpoint_path("00_test", "dropout-0.05", a).name == \
        f"dropout-0.05__smoke__{a.digest()}.pt"
