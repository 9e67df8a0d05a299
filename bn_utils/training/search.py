"""A small genetic search over a box of hyper-parameters (chapter 9's learning-rate / L2 search).

A population of random points in the box, each generation evaluated; the best ``keep`` survive
unchanged; the rest of the next generation are copies of random survivors with Gaussian noise
(``mutation_std``) added to every coordinate, clipped to the box; the answer is the best point
evaluated. Coordinates are whatever the caller chooses (chapter 9: natural logs of LR and L2).

This is not the student project's search that chapter 9 sets beside it (its Algorithm 3.2.0):
that one trains a new population every generation inside bounds it resets to the mean ± 1.5 std
of the best three (in log10), and returns 10 to the power of the last bounds' midpoint
(``experiments.ch09_in_practice.ga_search.STUDENT_SEARCH``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def _check(bounds, population: int, generations: int, keep: int, mutation_std: float) -> np.ndarray:
    """Return the bounds as a (D, 2) array, or raise ValueError naming the bad value."""
    if not isinstance(population, (int, np.integer)) or population < 2:
        raise ValueError(f"a genetic search needs population >= 2; got population={population!r}")
    if not isinstance(generations, (int, np.integer)) or generations < 1:
        raise ValueError(f"generations={generations!r} must be a positive integer")
    if not isinstance(keep, (int, np.integer)) or not 1 <= keep < population:
        raise ValueError(f"keep={keep!r} must be at least 1 and smaller than population={population}")
    if not mutation_std > 0:
        raise ValueError(f"mutation_std={mutation_std!r} must be > 0")
    box = np.asarray(bounds, dtype=float)
    if box.ndim != 2 or box.shape[1] != 2 or len(box) < 1:
        raise ValueError(f"bounds={bounds!r} must be a list of (low, high) pairs")
    for i, (lo, hi) in enumerate(box):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds[{i}]=({lo}, {hi}) must be finite with low < high")
    return box


def genetic_search(fitness: Callable[[np.ndarray], float], bounds: Sequence[Sequence[float]], *,
                   population: int = 10, generations: int = 10, keep: int = 3,
                   mutation_std: float = 1.5, seed: int = 0) -> dict:
    """Maximise ``fitness(point)`` over the box ``bounds`` [(low, high) per coordinate]; return
    ``{"points": (G, P, D), "scores": (G, P), "best_point": (D,), "best_score"}``.

    A NaN score (a diverged run) ranks last. Survivors are evaluated again in the next
    generation only through their stored score (each point is evaluated once).
    """
    box = _check(bounds, population, generations, keep, mutation_std)
    rng = np.random.default_rng(seed)
    lo, hi = box[:, 0], box[:, 1]
    points = rng.uniform(lo, hi, size=(population, len(box)))
    scores = np.array([float(fitness(p)) for p in points])
    all_points, all_scores = [points.copy()], [scores.copy()]
    for _ in range(generations - 1):
        order = np.argsort(np.where(np.isnan(scores), -np.inf, scores))[::-1][:keep]
        parents, parent_scores = points[order], scores[order]
        pick = rng.integers(0, keep, size=population - keep)
        children = np.clip(parents[pick] + rng.normal(0.0, mutation_std, (len(pick), len(box))), lo, hi)
        points = np.concatenate([parents, children])
        scores = np.concatenate([parent_scores, [float(fitness(p)) for p in children]])
        all_points.append(points.copy())
        all_scores.append(scores.copy())
    pts, scs = np.stack(all_points), np.stack(all_scores)
    flat = np.where(np.isnan(scs), -np.inf, scs).ravel()
    best = int(np.argmax(flat))
    return {"points": pts, "scores": scs, "best_point": pts.reshape(-1, len(box))[best],
            "best_score": float(scs.ravel()[best])}
