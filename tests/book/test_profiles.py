"""Profiles and configs: the right values per profile, and one clear error for nonsense."""

from dataclasses import FrozenInstanceError, dataclass
from typing import ClassVar

import pytest

from bn_utils.book.profiles import Config, check_profile, param


@dataclass(frozen=True)
class Toy(Config):
    steps: int = param(1000, "SGD steps", min=1)
    lr: float = param(0.1, min=1e-8)
    activation: str = param("sigmoid", choices=("sigmoid", "relu"))
    seeds: tuple = param((0, 1, 2), item_min=0)
    bn: bool = param(True)
    PROFILES: ClassVar[dict] = {"full": {}, "reference": {"steps": 500},
                                "quick": {"steps": 100, "seeds": (0,)},
                                "smoke": {"steps": 5, "seeds": (0,)}}


def test_each_profile_applies_its_changes_to_the_paper_defaults():
    assert Toy.for_profile("full") == Toy(profile="full")
    quick = Toy.for_profile("quick")
    assert (quick.steps, quick.seeds, quick.lr) == (100, (0,), 0.1)
    assert Toy.for_profile("smoke").steps == 5
    assert Toy.for_profile("reference").steps == 500 and Toy.for_profile("reference").seeds == (0, 1, 2)


def test_overrides_replace_fields_and_none_means_profile_value():
    cfg = Toy.for_profile("quick", steps=7, lr=None, activation="relu")
    assert (cfg.steps, cfg.lr, cfg.activation) == (7, 0.1, "relu")
    assert cfg.changes() == {"steps": 7, "activation": "relu"}
    assert not cfg.is_profile_default() and Toy.for_profile("quick").is_profile_default()


def test_values_are_coerced_to_the_field_type():
    cfg = Toy.for_profile("smoke", lr=1, seeds=[3, 4], steps=20.0)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.seeds == (3, 4) and cfg.steps == 20 and isinstance(cfg.steps, int)
    assert Toy.for_profile("smoke", seeds=5).seeds == (5,)  # papermill's `-p seeds 5`


@pytest.mark.parametrize("profile", ["fast", "", "FULL"])
def test_unknown_profile_names_the_value_and_the_allowed_ones(profile):
    with pytest.raises(ValueError, match=rf"unknown profile {profile!r}; choose one of smoke, quick, reference, full"):
        Toy.for_profile(profile)


@pytest.mark.parametrize("overrides, message", [
    ({"steps": 0}, r"steps=0 must be >= 1"),
    ({"steps": -5}, r"steps=-5 must be >= 1"),
    ({"lr": float("nan")}, r"lr=nan is not a number"),
    ({"steps": 1.5}, r"steps=1.5 should be of type int"),
    ({"steps": "many"}, r"steps='many' should be of type int"),
    ({"bn": 1}, r"bn=1 should be of type bool"),
    ({"activation": "swish"}, r"activation='swish' is not allowed; choose from 'sigmoid', 'relu'"),
    ({"seeds": (0, -1)}, r"seeds=\(0, -1\) must be >= 0"),
    ({"seeds": ()}, r"seeds=\(\) must not be empty"),
    ({"stpes": 10}, r"unknown parameter stpes for Toy; allowed: steps, lr, activation, seeds, bn"),
])
def test_nonsense_parameters_raise_one_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        Toy.for_profile("quick", **overrides)


def test_configs_are_frozen_and_digest_is_stable_and_sensitive():
    a, b = Toy.for_profile("quick"), Toy.for_profile("quick")
    with pytest.raises(FrozenInstanceError):
        a.steps = 3
    assert a.digest() == b.digest() and len(a.digest()) == 10
    assert a.digest() != a.replace(steps=101).digest()
    assert a.digest() != Toy.for_profile("smoke").digest()
    assert a.to_dict()["seeds"] == [0]


def test_describe_lists_every_parameter_per_profile():
    rows = {r["parameter"]: r for r in Toy.describe()}
    assert list(rows) == ["steps", "lr", "activation", "seeds", "bn"]
    assert [rows["steps"][p] for p in ("smoke", "quick", "reference", "full")] == [5, 100, 500, 1000]
    assert rows["steps"]["meaning"] == "SGD steps"


def test_check_profile_returns_a_known_profile_and_names_the_known_ones_otherwise():
    assert check_profile("smoke") == "smoke"
    with pytest.raises(ValueError, match="unknown profile 'huge'; choose one of smoke, quick, reference, full"):
        check_profile("huge")


def test_cross_field_validation_runs_for_every_instance():
    @dataclass(frozen=True)
    class Pair(Config):
        low: int = param(1)
        high: int = param(2)

        def validate(self):
            if self.low >= self.high:
                raise ValueError(f"low={self.low} must be < high={self.high}")

    with pytest.raises(ValueError, match="low=3 must be < high=2"):
        Pair.for_profile("smoke", low=3)


def test_a_config_class_must_define_every_profile_reference_included():
    @dataclass(frozen=True)
    class NoReference(Config):
        steps: int = param(10, min=1)
        PROFILES: ClassVar[dict] = {"full": {}, "quick": {}, "smoke": {}}

    with pytest.raises(TypeError, match="must define exactly"):
        NoReference.for_profile("quick")


@pytest.mark.parametrize("overrides, message", [({"steps": 0}, "steps=0 must be >= 1"),
                                                ({"stpes": 1}, "unknown parameter stpes")])
def test_the_reference_profile_validates_like_the_others(overrides, message):
    with pytest.raises(ValueError, match=message):
        Toy.for_profile("reference", **overrides)


def test_differences_list_what_a_stored_record_was_made_with():
    quick, full = Toy.for_profile("quick"), Toy.for_profile("full")
    rows = quick.differences(full.to_dict())
    assert rows == [{"parameter": "steps", "this run (quick)": 100, "shown record (full)": 1000},
                    {"parameter": "seeds", "this run (quick)": [0], "shown record (full)": [0, 1, 2]}]
    assert quick.differences(quick.to_dict()) == []


def _config_classes() -> list[type]:
    """Return every Config subclass the package defines (all its modules imported first)."""
    import importlib
    import pkgutil

    import bn_utils
    from bn_utils.book.profiles import Config

    for module in pkgutil.walk_packages(bn_utils.__path__, "bn_utils."):
        importlib.import_module(module.name)

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted({c for c in below(Config) if c.__module__.startswith("bn_utils.")},
                  key=lambda c: f"{c.__module__}.{c.__name__}")


def _unbounded(cls) -> list[str]:
    """Return the numeric fields of ``cls`` (numbers, or tuples of numbers) without both a lower
    and an upper bound; a field with ``choices`` is bounded by them."""
    import dataclasses

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    missing = []
    for f in dataclasses.fields(cls):
        d, meta = f.default, f.metadata
        if meta.get("choices") is not None:
            continue
        if number(d) or (isinstance(d, tuple) and d and all(number(v) for v in d)):
            lo = meta.get("item_min") if isinstance(d, tuple) and meta.get("item_min") is not None \
                else meta.get("min")
            if lo is None or meta.get("max") is None:
                missing.append(f.name)
    return missing


@pytest.mark.parametrize("cls", _config_classes(), ids=lambda c: c.__name__)
def test_every_numeric_parameter_has_a_lower_and_an_upper_bound(cls):
    assert _unbounded(cls) == [], f"{cls.__name__}: add min= and max= to these fields"


@pytest.mark.parametrize("cls", _config_classes(), ids=lambda c: c.__name__)
def test_every_profile_and_default_is_within_the_bounds(cls):
    from bn_utils.book.profiles import PROFILES

    if set(cls.PROFILES) != set(PROFILES):   # a base class the chapters' configs share
        assert cls.__name__ == "SanturkarConfig", f"{cls.__name__} lacks a profile of {sorted(PROFILES)}"
        return
    for profile in PROFILES:
        cfg = cls.for_profile(profile)
        assert cfg.profile == profile
