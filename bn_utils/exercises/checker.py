"""How an exercise's answer is checked: run it on random inputs, compare with a reference, and
when it differs, say in one sentence what went wrong (by testing it against the typical mistakes).

A checker (``bn_utils.exercises.check_<name>(answer)``) prints ``correct``, ``not done yet: ...``
(the answer is still the stub: it raises ``NotImplementedError`` or is ``None``) or one sentence
saying what is wrong, and returns a :class:`Result`, which is truthy only when the answer is
correct. A notebook shows the reader's check as ``ex.check_x(answer)`` (never fails the run) and
the solution's as ``assert ex.check_x(answer)``. Writing a checker::

    def check_double(fn):
        \"\"\"Check fn(x) -> 2 * x.\"\"\"
        def run():
            x = rng().normal(size=(4, 5))
            out = call(fn, x)                 # NotImplementedError -> "not done yet"
            expect_shape(out, x.shape)
            if close(out, 2 * x):
                return
            diagnose(out, {"you added x to itself once too often": 3 * x})
            raise Wrong("the values differ from 2 * x")
        return verdict(run)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..training.checks import as_array

CORRECT = "correct"


class Result:
    """What a check found: ``ok`` (True when correct), ``done`` (False for the untouched stub) and
    ``message`` (``"correct"`` or one sentence); ``bool(result)`` is ``ok``."""

    def __init__(self, ok: bool, message: str, done: bool = True):
        self.ok, self.message, self.done = ok, message, done

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"Result(ok={self.ok}, done={self.done}, message={self.message!r})"

    def _ipython_display_(self) -> None:
        """Show nothing in a notebook: the checker has printed the message already."""


class Wrong(Exception):
    """Raised inside a check with the one sentence that explains what is wrong."""


class NotDone(Exception):
    """Raised inside a check when the answer is still the stub."""


def verdict(run: Callable[[], None]) -> Result:
    """Return the Result of ``run()`` (which raises Wrong or NotDone, or returns when correct),
    after printing its message."""
    try:
        run()
        result = Result(True, CORRECT)
    except NotDone as err:
        result = Result(False, f"not done yet: {err}", done=False)
    except Wrong as err:
        result = Result(False, str(err))
    print(result.message)
    return result


def rng(seed: int = 0) -> np.random.Generator:
    """Return a seeded NumPy generator (checks are reproducible)."""
    return np.random.default_rng(seed)


def call(fn, *args, **kwargs):
    """Return ``fn(*args, **kwargs)``; a stub (NotImplementedError, None answer, None result)
    raises NotDone and any other error raises Wrong, naming the exception."""
    if fn is None or fn is Ellipsis:
        raise NotDone("replace the None in the answer cell with your answer and run it again")
    try:
        out = fn(*args, **kwargs)
    except NotImplementedError:
        raise NotDone("fill in the function in the answer cell and run that cell again") from None
    except Exception as err:  # the reader's code: any error is an answer to explain
        raise Wrong(f"your function raised {type(err).__name__}: {err}") from None
    if out is None:
        raise NotDone("your function returns None; finish it with a return statement")
    return out


def close(a, b, tol: float = 1e-6) -> bool:
    """Return True when a and b have the same shape and agree to ``tol`` (relative to their size)."""
    a, b = as_array(a), as_array(b)
    if a.shape != b.shape:
        return False
    return bool(np.all(np.abs(a - b) <= tol * (1.0 + np.abs(b))))


def expect_shape(out, shape: tuple, what: str = "your result") -> None:
    """Raise Wrong when ``out`` does not have ``shape``."""
    got = tuple(as_array(out).shape)
    if got != tuple(shape):
        raise Wrong(f"{what} has shape {got}, expected {tuple(shape)}: check the axes you reduce over")


def diagnose(out, mistakes: dict) -> None:
    """Raise Wrong(message) for the first ``{message: what that mistake gives}`` that ``out``
    equals; return when it matches none of them."""
    for message, wrong in mistakes.items():
        if close(out, wrong):
            raise Wrong(message)


def check_number(answer, expected: float, mistakes: dict, what: str, tol: float = 0.02) -> Result:
    """Return the Result of comparing a numeric ``answer`` with ``expected`` (relative ``tol``);
    ``mistakes`` maps a typical wrong value to its one-sentence explanation."""
    def run():
        if answer is None or answer is Ellipsis:
            raise NotDone(f"set the answer to a number ({what}) and run the cell again")
        try:
            value = float(answer)
        except (TypeError, ValueError):
            raise Wrong(f"the answer should be a number ({what}), got {answer!r}") from None
        if abs(value - expected) <= tol * max(abs(expected), 1e-12) + 1e-12:
            return
        for wrong, message in mistakes.items():
            if abs(value - wrong) <= tol * max(abs(wrong), 1e-12) + 1e-12:
                raise Wrong(message)
        raise Wrong(f"{value:g} is not {what}; reread the exercise and try again")
    return verdict(run)
