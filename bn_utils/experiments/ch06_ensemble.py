"""Chapter 06: an ensemble of BN-x30 networks (Ioffe & Szegedy, Sec. 4.2.3), on CIFAR-10.

Six members, each a BN-x30 run of chapter 05 that differs from the others as the paper's did:
three differ only in their seed (initialisation, shuffling, augmentation), the others add dropout
(5 % or 10 %), or larger initial conv weights with per-activation BN on the last hidden layer.
The ensemble averages the members' softmax outputs on the test set.

Members are chapter 05's runs: each is a :class:`~bn_utils.experiments.ch05_cifar_inception.RunConfig`
stored on its own with its final test logits, so the plain BN-x30 seeds that chapter 05 trained
are loaded, not trained again (they live in chapter 05's results folder), and the ensemble is
computed from stored logits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..book import claims, plotting, results
from ..book.profiles import EPOCHS_MAX, WIDTH_MAX, Config, param
from . import ch05_cifar_inception as inception

CHAPTER = "06_ensemble"
BASE_ROW = "BN-x30"

# member name -> the seed and the changes to BN-x30 it trains with (the paper's variants)
VARIANTS: dict[str, dict] = {
    "seed-0": {"seed": 0},
    "seed-1": {"seed": 1},
    "seed-2": {"seed": 2},
    "dropout-5pct": {"seed": 3, "dropout": 0.05},
    "dropout-10pct": {"seed": 4, "dropout": 0.10},
    "init-x2-final-bn": {"seed": 5, "init_gain": 2.0, "final_bn": True},
}
LABELS = {
    "seed-0": "BN-x30, seed 0", "seed-1": "BN-x30, seed 1", "seed-2": "BN-x30, seed 2",
    "dropout-5pct": "+ dropout 5 %", "dropout-10pct": "+ dropout 10 %",
    "init-x2-final-bn": "+ init x2, BN on last hidden",
}
# Ioffe & Szegedy (2015), Table 3 (ImageNet, ensemble of 6 BN-Inception networks, multi-crop):
# top-5 error on the validation set and (from the test server) on the test set, in %.
# Its best single network, BN-Inception with the same 144 crops, had 5.82 % top-5 validation error.
PAPER = {"top5_error_validation": 4.9, "top5_error_test": 4.82, "top5_error_single": 5.82}
# The student reproduction on CIFAR-10 (references.bib: student_reproduction), top-1 accuracy (%):
# its ensemble of TinyInceptions, and its best BN-x30 run (chapter 05's STUDENT table)
STUDENT = {"top1_accuracy": 73.64, "top1_single": inception.STUDENT["BN-x30"]["max_accuracy"],
           "gain_words": "about 2-3%"}   # its words for the gain over its members, which it does not list


def _mirror(profile: str) -> dict:
    """Return chapter 05's ``profile`` values of the training fields this chapter mirrors."""
    ours = {"epochs_bn": "epochs", "width": "width", "n_train": "n_train", "n_test": "n_test"}
    return {ours[k]: v for k, v in inception.AblationConfig.PROFILES[profile].items() if k in ours}


@dataclass(frozen=True)
class EnsembleConfig(Config):
    """The ensemble (defaults: the ``full`` profile). The training fields mirror chapter 05's
    profile values, so that its BN-x30 runs are exactly the ones the members reuse."""

    members: tuple = param(tuple(VARIANTS), "ensemble members", choices=tuple(VARIANTS))
    epochs: int = param(60, "training epochs of every member (chapter 05's BN rows)", min=1,
                        max=EPOCHS_MAX)
    width: int = param(16, "TinyInception base width", min=2, max=WIDTH_MAX)
    n_train: int = param(50_000, "training images (class-stratified subset)", min=64, max=50_000)
    n_test: int = param(10_000, "test images the ensemble is scored on", min=10, max=10_000)

    PROFILES: ClassVar[dict] = {
        "full": _mirror("full"),
        "reference": _mirror("reference"),
        "quick": _mirror("quick"),
        "smoke": {"members": ("seed-0", "dropout-5pct"), **_mirror("smoke")},
    }

    def validate(self) -> None:
        """Check that the members are distinct."""
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"parameter members={self.members!r} lists a member twice")

    def base(self) -> inception.AblationConfig:
        """Return chapter 05's config whose BN-x30 runs the members are built from."""
        return inception.AblationConfig.for_profile(
            self.profile if self.profile in inception.AblationConfig.PROFILES else "full",
            epochs_bn=self.epochs, width=self.width, n_train=self.n_train, n_test=self.n_test)

    def member(self, name: str) -> tuple[inception.RunConfig, str]:
        """Return a member's run config and the chapter whose results folder keeps its record:
        chapter 05's for plain BN-x30 seeds (so they are shared), this chapter's for variants."""
        spec = dict(VARIANTS[name])
        seed = spec.pop("seed")
        if not spec:
            return self.base().run_config(BASE_ROW, seed), inception.CHAPTER
        return self.base().run_config(BASE_ROW, seed, row=f"{BASE_ROW}-{name}", **spec), CHAPTER


def training_cost(cfg: EnsembleConfig) -> dict:
    """Return the SGD steps of all members together, those of chapter 05's Inception row (one
    seed) at the same profile, and their ratio: what the ensemble costs in Inceptions."""
    members = sum(cfg.member(name)[0].steps for name in cfg.members)
    inception_steps = cfg.base().run_config("Inception", 0).steps
    return {"member_steps": members, "inception_steps": inception_steps,
            "ratio": members / inception_steps}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return the row-wise softmax of logits (N, C) in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def topk_right(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """Return, per row of ``scores`` (N, C), whether its label is among its k largest; a row with
    a NaN or infinite score is wrong, as in the book's one accuracy rule (``train.correct``)."""
    scores = np.asarray(scores, dtype=np.float64)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (top == np.asarray(labels)[:, None]).any(1) & np.isfinite(scores).all(1)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Return the fraction of rows of ``scores`` (N, C) whose label is among their k largest."""
    return float(topk_right(scores, labels, k).mean())


def ensemble_probabilities(logits: list[np.ndarray]) -> np.ndarray:
    """Return the ensemble's class probabilities: the average of the members' softmax outputs."""
    return np.mean([softmax(z) for z in logits], axis=0)


def subset_accuracies(logits: list[np.ndarray], labels: np.ndarray) -> list[float]:
    """Return, for k = 1..n, the top-1 accuracy of a k-member ensemble averaged over every
    subset of k members (k = n: the whole ensemble)."""
    probs = [softmax(z) for z in logits]
    out = []
    for k in range(1, len(probs) + 1):
        accs = [topk_accuracy(np.mean([probs[i] for i in sub], 0), labels)
                for sub in itertools.combinations(range(len(probs)), k)]
        out.append(float(np.mean(accs)))
    return out


def paired_gain(better: np.ndarray, worse: np.ndarray) -> tuple[float, float]:
    """Return the difference in accuracy of two classifiers scored on the same images (boolean
    arrays: image right or not) and its standard error, from the images on which they disagree
    (the paired standard error: images both get right or both get wrong add no noise)."""
    d = np.asarray(better, dtype=np.float64) - np.asarray(worse, dtype=np.float64)
    n = len(d)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def unpaired_se(acc_a: float, acc_b: float, n: int) -> float:
    """Return the standard error that the difference of two accuracies would have if each were
    scored on its own ``n`` independent test images (binomial): what pairing saves, for comparison
    with :func:`paired_gain`'s."""
    if n < 1 or not (0 <= acc_a <= 1 and 0 <= acc_b <= 1):
        raise ValueError(f"accuracies {acc_a!r}, {acc_b!r} must lie in [0, 1] and n={n!r} be positive")
    return float(np.sqrt((acc_a * (1 - acc_a) + acc_b * (1 - acc_b)) / n))


def load_members(cfg: EnsembleConfig, stored_only: bool = False) -> dict:
    """Return ``{name: record}`` of the members of ``cfg``, loading or training each (``stored_only``:
    only those stored, never training, so a member not stored yet is left out)."""
    out = {}
    for name in cfg.members:
        rc, chapter = cfg.member(name)
        record = results.load(chapter, rc.name, rc) if stored_only else inception.run_one(rc, chapter)
        if record is not None:
            out[name] = record
    return out


def run_members(cfg: EnsembleConfig, stored_only: bool = False) -> dict:
    """Load (or train) every member (``stored_only``: only those stored, never training); return
    each member's scores, the ensemble's top-1/top-5 accuracy, its gain over the best member, and
    the accuracy by ensemble size."""
    return score_members(cfg, load_members(cfg, stored_only))


def score_members(cfg: EnsembleConfig, loaded: dict) -> dict:
    """Return what :func:`run_members` returns, for the member records ``loaded`` (``load_members``)."""
    members, usable_logits, labels = {}, {}, None
    for name, record in loaded.items():
        rc, chapter = cfg.member(name)
        z = record["test_logits"].astype(np.float32)
        y = record["test_labels"].astype(np.int64)
        if labels is None:
            labels = y
        assert np.array_equal(labels, y), "members were scored on different test sets"
        ok = not record["diverged"] and bool(np.isfinite(z).all())
        members[name] = {"top1": topk_accuracy(z, y, 1) if ok else None,
                         "top5": topk_accuracy(z, y, 5) if ok else None,
                         "max_accuracy_during_training": record["max_accuracy"],
                         "diverged": not ok, "seed": rc.seed, "stored_in": chapter,
                         # training time over every attempt (a resumed run's meta counts the last)
                         "seconds": float(record["history"]["seconds"]), "device": record.meta.get("device"),
                         "reused_from_chapter_05": chapter == inception.CHAPTER}
        if ok:
            usable_logits[name] = z
    logits = list(usable_logits.values())
    if not logits:
        return {"members": members, "ensemble": None, "n_used": 0}
    probs = ensemble_probabilities(logits)
    ens = {"top1": topk_accuracy(probs, labels, 1), "top5": topk_accuracy(probs, labels, 5)}
    usable = {n: m for n, m in members.items() if not m["diverged"]}
    best = max(usable, key=lambda n: usable[n]["top1"])
    _, gain_se = paired_gain(topk_right(probs, labels), topk_right(usable_logits[best], labels))
    return {"members": members, "ensemble": ens, "n_used": len(logits), "best_member": best,
            "gain_top1": ens["top1"] - usable[best]["top1"], "gain_top1_se": gain_se,
            "gain_top5": ens["top5"] - max(m["top5"] for m in usable.values()),
            "mean_member_top1": float(np.mean([m["top1"] for m in usable.values()])),
            "by_size": subset_accuracies(logits, labels), "n_test": len(labels)}


def stored_ensemble(cfg: EnsembleConfig) -> results.Record | None:
    """Return the ensemble of the members of ``cfg`` stored so far, never training (``meta["runs"]``
    says how many of how many), or None with fewer than two: the members land one by one."""
    loaded = load_members(cfg, stored_only=True)
    out = score_members(cfg, loaded)
    if out["n_used"] < 2:
        return None
    metas = [record.meta for record in loaded.values()]
    meta = results.assembled_meta(metas, f"{len(out['members'])} of {len(cfg.members)}")
    return results.Record(CHAPTER, "ensemble", cfg.to_dict(), out, meta=meta)


def run(cfg: EnsembleConfig) -> results.Record:
    """Return the stored ensemble of ``cfg``, loading or training its members as needed. At the
    unmodified quick profile: the best stored ensemble (full, else reference), else the reference
    members stored so far (:func:`stored_ensemble`, at least two), else a fresh quick one."""
    return results.load_or_run(CHAPTER, "ensemble", cfg, run_members, prefer_stored=True,
                               partial=lambda: stored_ensemble(EnsembleConfig.for_profile("reference")))


def member_names(record: results.Record) -> list[str]:
    """Return the record's members in the config's order (stored JSON sorts its keys)."""
    return [n for n in record.config["members"] if n in record["members"]]


def trained_by_chapter_05(record: results.Record, name: str) -> bool:
    """Return whether member ``name`` is one of chapter 05's own runs (a seed of its BN-x30 row),
    as opposed to one this chapter trained (the variants, and the BN-x30 seeds chapter 05's table
    does not have, which are stored in chapter 05's folder all the same)."""
    m, own_seeds = record["members"][name], EnsembleConfig.from_record(record).base().seeds
    return bool(m["reused_from_chapter_05"]) and m.get("seed") in own_seeds


def table(record: results.Record) -> list[dict]:
    """Return one line per member and one for the ensemble: top-1 and top-5 test accuracy (%),
    beside the paper's and the student reproduction's ensemble numbers."""
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    members = record["members"]
    rows = [{"network": LABELS[n], "top-1 %": pct(members[n]["top1"]),
             "top-5 %": pct(members[n]["top5"]),
             "source": "chapter 5's run" if trained_by_chapter_05(record, n) else "trained here",
             "diverged": "yes" if members[n]["diverged"] else "no"}
            for n in member_names(record)]
    ens = record["ensemble"] or {}
    rows.append({"network": f"ensemble of {record['n_used']}", "top-1 %": pct(ens.get("top1")),
                 "top-5 %": pct(ens.get("top5")), "source": "averaged softmax", "diverged": "—"})
    rows.append({"network": "paper (ImageNet, 6 BN-Inceptions)", "top-1 %": None,
                 "top-5 %": 100 - PAPER["top5_error_validation"],
                 "source": f"top-5 error {PAPER['top5_error_validation']} % val, "
                         f"{PAPER['top5_error_test']} % test", "diverged": "—"})
    rows.append({"network": "student (CIFAR-10)", "top-1 %": STUDENT["top1_accuracy"],
                 "top-5 %": None, "source": "ensemble of TinyInceptions", "diverged": "—"})
    return rows


def claim_rows(record: results.Record) -> list[dict]:
    """Return the headline claim about the ensemble (it beats its best single network; the paper's
    Table 3 and the student reproduction claim it) in :func:`bn_utils.book.claims.row`'s shape: decided
    on the gain in top-1 accuracy against its paired standard error over the test images (the
    members and the ensemble are scored on the same images; one ensemble, so the spread is the
    test set's, not seeds')."""
    ens, se = record["ensemble"], record.metrics.get("gain_top1_se")
    text = "an ensemble of BN networks is more accurate than its best member"
    source = "Ioffe & Szegedy 2015, Table 3; student reproduction"
    theirs = (f"{PAPER['top5_error_validation']} % vs {PAPER['top5_error_single']} % top-5 error "
              f"(ImageNet, 6 networks, 144 crops); student: {STUDENT['top1_accuracy']:.2f} % top-1 (CIFAR-10), "
              f"\"{STUDENT['gain_words']}\" above its members; its best single run, {STUDENT['top1_single']:.2f} %, "
              "is its ablation table's BN-x30, not a member")
    if ens is None:
        return [claims.row(text, source, theirs, "no member finished", claims.NOT_COMPARABLE)]
    if se is None:
        return [claims.missing(text, source, theirs)]
    best = 100 * record["members"][record["best_member"]]["top1"]
    gain = 100 * record["gain_top1"]
    d = claims.decide(gain, 100 * se, record["n_used"], min_seeds=1)
    return [claims.row(text, source, theirs,
                       f"{100 * ens['top1']:.2f} % vs {best:.2f} % top-1 ({record['n_used']} members)", d,
                       spread=f"{gain:+.2f} ± {100 * se:.2f} points (paired SE over "
                              f"{record['n_test']:,} test images)")]


def training_minutes(record: results.Record) -> dict:
    """Return the stored training time of the members, in minutes: of those chapter 05's own table
    trains (its rows' seeds) and of those this chapter trains (the variants, and the BN-x30 seeds
    chapter 05's table does not have, stored in its folder all the same); and their devices."""
    out = {"this_chapter": 0.0, "chapter_05": 0.0, "devices": set()}
    for name, m in record["members"].items():
        if m.get("seconds") is None:
            continue
        out["chapter_05" if trained_by_chapter_05(record, name) else "this_chapter"] += m["seconds"] / 60
        out["devices"].add(m.get("device") or "unknown device")
    out["devices"] = ", ".join(sorted(out["devices"]))
    return out


def plot(record: results.Record):
    """Figure: each member's and the ensemble's top-1 test accuracy (dots), and the accuracy of
    a k-member ensemble (mean over all k-subsets) against k."""
    fig, (ax_members, ax_k) = plotting.panels(2, wide=(0, 1), height=3.4)   # the members need a row
    names = member_names(record)
    accs = [record["members"][n]["top1"] for n in names]
    ens = record["ensemble"]
    # dots, not bars: the axis starts near the lowest accuracy, where a bar's length would mislead
    valid = [100 * a for a in accs if a is not None] + ([100 * ens["top1"]] if ens else [])
    low = min(valid) - 3 if valid else 0.0
    for i, a in enumerate(accs):
        if a is None:
            ax_members.annotate("diverged", (i, low), ha="center", rotation=90, va="bottom")
            continue
        ax_members.plot([i], [100 * a], "o", color=plotting.PALETTE["bn"], ms=7,
                    label="member" if i == 0 else None)
        ax_members.annotate(f"{100 * a:.1f}", (i, 100 * a), xytext=(0, 6), textcoords="offset points",
                        ha="center", fontsize=10)
    if ens is not None:
        ax_members.plot([len(names)], [100 * ens["top1"]], "D", color=plotting.PALETTE["other"], ms=7,
                    label=f"ensemble of {record['n_used']}")
        ax_members.annotate(f"{100 * ens['top1']:.1f}", (len(names), 100 * ens["top1"]), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=10)
    ax_members.set_xticks(range(len(names) + 1), [LABELS[n] for n in names] + ["ensemble"],
                      rotation=20, ha="right")
    ax_members.set_xlim(-0.6, len(names) + 0.6)
    if valid:
        ax_members.set_ylim(max(0.0, low), min(100.0, max(valid) + 3))
    plotting.label(ax_members, title="Top-1 test accuracy of each member and of the ensemble",
                   xlabel="network", ylabel="test accuracy (%)")
    if ens is not None:
        ks = np.arange(1, len(record["by_size"]) + 1)
        ax_k.plot(ks, 100 * np.asarray(record["by_size"]), "o-", color=plotting.PALETTE["other"],
                  label="mean over all k-member subsets")
        ax_k.set_xticks(ks)
    plotting.label(ax_k, title="Ensemble accuracy vs number of members",
                   xlabel="members averaged (k)", ylabel="top-1 test accuracy (%)")
    cfg = record.config
    devices = training_minutes(record)["devices"] if ens is not None else ""
    plotting.note(fig, f"BN-x30 TinyInceptions (width {cfg['width']}, {cfg['epochs']} epochs on "
                       f"{cfg['n_train']:,} images), scored on {cfg['n_test']:,} test images"
                       + (f"; the members trained on {devices}, the ensemble scored where this record was "
                          "made (below)" if devices else "") + ".")
    return fig
