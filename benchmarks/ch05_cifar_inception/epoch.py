"""One reference epoch of a chapter-05 row as the chapter runs it, against a plain PyTorch loop.

The chapter's epoch is ``inception.train_run`` itself (batching, augmentation, the training
steps, logging, the epoch's checkpoint and its test-set evaluations). The plain loop is what one
writes by hand for the same network: pre-normalised float images in memory, a random flip,
forward, cross-entropy, backward, momentum SGD, no evaluation. The two run interleaved, in
rounds, in one process, and we print medians: a neighbour's load hits both alike.

The parts of the chapter's epoch (its test-set evaluations, its augmentation) are timed inside
that epoch, by wrapping the functions the chapter calls, so each costs what it costs in a run
(an evaluation after training steps is slower than one on a fresh model). A one-epoch run
evaluates more often than the run's average epoch (step 0, the dense early evaluations, the
end), so the chapter's *average* epoch is the measured one with its evaluations replaced by the
run's mean count per epoch, each at the measured in-run cost.

    python benchmarks/ch05_cifar_inception/epoch.py [--rows BN-x30 Inception] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bn_utils.training import augment
from bn_utils.experiments import ch05_cifar_inception as inc
from bn_utils.experiments.ch05_cifar_inception import experiment

TARGET = 1.25   # the chapter's average epoch may take at most this multiple of the plain loop's


def plain_epoch(rc: inc.RunConfig, x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the seconds of one epoch of a hand-written loop over ``rc``'s network."""
    model = experiment.build_model(rc)
    opt = torch.optim.SGD(model.parameters(), lr=rc.lr, momentum=rc.momentum,
                          weight_decay=rc.weight_decay)
    model.train()
    t0 = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(rc.steps_per_epoch):
        idx = order[i * rc.batch_size: (i + 1) * rc.batch_size]
        xb = x[idx]
        xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, xb.flip(3), xb)
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


class _Timer:
    """Wrap ``owner.name`` so each call adds its seconds to ``self.seconds``; ``restore()`` undoes it."""

    def __init__(self, owner, name: str):
        self.owner, self.name, self.original = owner, name, getattr(owner, name)
        self.seconds, self.calls = 0.0, 0

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1
        setattr(owner, name, timed)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.original)


def chapter_epoch(rc: inc.RunConfig) -> dict:
    """Return the seconds of one epoch of ``train_run`` (checkpointing as the chapter does), with
    the seconds and count of its test-set evaluations and the seconds of its augmentation."""
    one = rc.replace(epochs=1)
    evals, aug = _Timer(experiment, "predict"), _Timer(augment.Augment, "__call__")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            experiment.train_run(one, checkpoint=Path(tmp) / "run.pt")
            seconds = time.perf_counter() - t0
    finally:
        evals.restore()
        aug.restore()
    return {"total": seconds, "evals": evals.calls, "eval_seconds": evals.seconds,
            "augmentation": aug.seconds}


def evals_per_epoch(rc: inc.RunConfig) -> float:
    """Return the test-set evaluations of the whole run ``rc`` per epoch (step 0, regular, dense,
    the final logits)."""
    regular = len(range(0, rc.steps, rc.steps_per_epoch // rc.evals_per_epoch)) + 1
    return (regular + len(experiment.dense_eval_steps(rc)) + 1) / rc.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["BN-x30", "Inception"], choices=tuple(inc.ROWS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = inc.AblationConfig.for_profile("reference")
    x_tr, y_tr, x_te, y_te = experiment.cifar_uint8(cfg.n_train, cfg.n_test, "cpu")
    x_plain = augment.normalise(x_tr)   # the plain loop normalises once, up front
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), {args.rounds} rounds, "
          f"reference profile, {cfg.n_train:,} training images (median of the rounds)")
    for row in args.rows:
        rc = cfg.run_config(row, 0)
        plain, chapter = [], []
        for _ in range(args.rounds):
            plain.append(plain_epoch(rc, x_plain, y_tr))
            chapter.append(chapter_epoch(rc))
        t_plain = statistics.median(plain)
        t_first = statistics.median(c["total"] for c in chapter)
        n_evals = chapter[0]["evals"]
        per_eval = statistics.median(c["eval_seconds"] / c["evals"] for c in chapter)
        t_aug = statistics.median(c["augmentation"] for c in chapter)
        mean_evals = evals_per_epoch(rc)
        t_mean = t_first + (mean_evals - n_evals) * per_eval
        rest = t_mean - mean_evals * per_eval - t_aug
        print(f"\n{row} ({rc.epochs} epochs, {rc.steps_per_epoch} steps of {rc.batch_size} per epoch)")
        print(f"  plain PyTorch loop, one epoch:           {t_plain:6.1f} s")
        print(f"  chapter, first epoch ({n_evals} evaluations):   {t_first:6.1f} s")
        print(f"  chapter, the run's mean epoch ({mean_evals:.2f} evaluations): {t_mean:6.1f} s"
              f"  = {t_mean / t_plain:.2f}x the plain loop (target <= {TARGET}x)")
        print(f"  shares of the mean epoch: training steps and the rest {rest / t_mean:.0%}, "
              f"evaluations {mean_evals * per_eval / t_mean:.0%} ({per_eval:.2f} s each, in the run), "
              f"augmentation {t_aug / t_mean:.0%}")
        print(f"  whole run at this rate: {rc.epochs * t_mean / 60:.0f} min")

if __name__ == "__main__":
    main()
