"""Profiles and experiment configuration: configuration is data.

Every chapter's experiment is one frozen dataclass derived from :class:`Config`. Its field
defaults are the paper's protocol; ``PROFILES`` lists what each profile changes::

    @dataclass(frozen=True)
    class MnistConfig(Config):
        steps: int = param(50_000, "SGD steps (the paper's Fig. 1)", min=1)
        activation: str = param("sigmoid", choices=("sigmoid", "tanh", "relu"))
        PROFILES: ClassVar[dict] = {"full": {}, "reference": {"steps": 20_000},
                                    "quick": {"steps": 3000}, "smoke": {"steps": 40}}

    cfg = MnistConfig.for_profile("quick", steps=None, activation="relu")   # None: profile value

An unknown profile, an unknown parameter or a nonsense value raises one ``ValueError`` that names
the bad value and what is allowed, before any work starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

# cheapest first: smoke (CI, seconds), quick (the book's build, <= 3 min on 2 CPU cores),
# reference (the committed CPU results, <= 2 h on 2 cores in records of <= 30 min), full (GPU)
PROFILES = ("smoke", "quick", "reference", "full")
SEED_MAX = 2**32 - 1   # NumPy's and torch's seeds both accept 0 .. 2**32 - 1
# Upper bounds of every count a chapter takes: far above any run that fits a GPU-day, so that only
# typos (10**20 steps, 1e999) fail, and they fail in the runner rather than in the kernel.
STEPS_MAX = 10**7      # SGD steps, and intervals counted in steps
EXAMPLES_MAX = 10**7   # dataset sizes and subsets
BATCH_MAX = 2**16
WIDTH_MAX = 2**14      # units, channels and sizes of one layer
EPOCHS_MAX = 10_000    # passes over a training set, and intervals counted in epochs


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known profile, else raise a ValueError listing them."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def param(default: Any, doc: str = "", *, min: float | None = None, max: float | None = None,
          choices: tuple | None = None, item_min: float | None = None) -> Any:
    """Return a dataclass field with a default, a one-line doc and the checks its values obey.

    ``min``/``max`` bound numbers; ``choices`` lists allowed values (for a tuple field, allowed
    items); ``item_min`` bounds every item of a tuple field.
    """
    meta = {"doc": doc, "min": min, "max": max, "choices": choices, "item_min": item_min}
    return dataclasses.field(default=default, metadata=meta)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Return ``value`` converted to the type of ``default``, or raise ValueError."""
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind is tuple:
        if isinstance(value, (list, tuple)):
            items = [_coerce(name, v, default[0]) if default else v for v in value]
            return tuple(items)
        if default and not isinstance(value, (str, bytes)):
            # a single value where a tuple is expected: papermill's `-p seeds 3`
            return (_coerce(name, value, default[0]),)
    elif default is None:
        return value
    raise ValueError(f"parameter {name}={value!r} should be of type {kind.__name__} "
                     f"(like its default {default!r})")


def _check_value(name: str, value: Any, meta: dict) -> None:
    """Raise ValueError if ``value`` breaks the bounds or choices in ``meta``."""
    items = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and not value:
        raise ValueError(f"parameter {name}=() must not be empty")
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if isinstance(value, tuple):
        lo = meta.get("item_min") if meta.get("item_min") is not None else lo
    for item in items:
        if choices is not None and item not in choices:
            raise ValueError(f"parameter {name}={value!r} is not allowed; "
                             f"choose from {', '.join(map(repr, choices))}")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if item != item:  # NaN
                raise ValueError(f"parameter {name}={value!r} is not a number")
            if lo is not None and item < lo:
                raise ValueError(f"parameter {name}={value!r} must be >= {lo}")
            if hi is not None and item > hi:
                raise ValueError(f"parameter {name}={value!r} must be <= {hi}")


@dataclass(frozen=True)
class Config:
    """Base of every experiment configuration: validated, hashable, serialisable."""

    profile: str = "custom"
    PROFILES: ClassVar[dict[str, dict]] = {"smoke": {}, "quick": {}, "reference": {}, "full": {}}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING:
                coerced = _coerce(f.name, value, f.default)
                if coerced is not value:
                    object.__setattr__(self, f.name, coerced)
                value = coerced
            _check_value(f.name, value, f.metadata)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks of a subclass; raise ValueError on nonsense."""

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "Config":
        """Return the config of ``profile`` with ``overrides`` applied (``None`` values skipped)."""
        check_profile(profile)
        if set(cls.PROFILES) != set(PROFILES):
            raise TypeError(f"{cls.__name__}.PROFILES must define exactly {PROFILES}")
        names = [f.name for f in dataclasses.fields(cls) if f.name != "profile"]
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"unknown parameter {', '.join(unknown)} for {cls.__name__}; "
                             f"allowed: {', '.join(names)}")
        return cls(profile=profile, **{**cls.PROFILES[profile], **given})

    @classmethod
    def from_record(cls, record: Any) -> "Config":
        """Return the config a stored record was made with (``record.config``, validated): what a
        chapter quotes about the record it shows, whichever profile this run has."""
        return cls(**record.config)

    def replace(self, **changes: Any) -> "Config":
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the fields as a JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """Return a short stable hash of the fields, the key of stored results."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def is_profile_default(self) -> bool:
        """Return True if this config is exactly its profile's, with no overrides."""
        return self.profile in PROFILES and self == type(self).for_profile(self.profile)

    def changes(self) -> dict:
        """Return the fields that differ from the profile's values (the user's overrides)."""
        if self.profile not in PROFILES:
            return {}
        base = type(self).for_profile(self.profile)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(base, f.name)}

    def differences(self, shown: dict) -> list[dict]:
        """Return one row per field where the config ``shown`` (a record's, as a dict) differs
        from this one: what the figures of a stored record were made with, beside this run's."""
        mine = self.to_dict()
        return [{"parameter": k, f"this run ({self.profile})": mine.get(k),
                 f"shown record ({shown.get('profile', '?')})": v}
                for k, v in shown.items() if mine.get(k) != v and k != "profile"]

    @classmethod
    def describe(cls) -> list[dict]:
        """Return one row per parameter: its name, value in each profile, and what it means."""
        rows = []
        for f in dataclasses.fields(cls):
            if f.name == "profile":
                continue
            row = {"parameter": f.name}
            row.update({p: cls.PROFILES[p].get(f.name, f.default) for p in PROFILES})
            row["meaning"] = f.metadata.get("doc", "")
            rows.append(row)
        return rows
