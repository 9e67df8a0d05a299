"""One reference epoch of a chapter-05 row as the chapter runs it, against a plain PyTorch loop.

The chapter's epoch is ``inception.train_run`` itself (batching, augmentation, the training
steps, logging, the epoch's checkpoint and its test-set evaluations). The plain loop is what one
writes by hand for the same network: pre-normalised float images in memory, a random flip,
forward, cross-entropy, backward, momentum SGD, no evaluation. The two run interleaved, in
rounds, in one process, and we print medians: a neighbour's load hits both alike.

A one-epoch run evaluates more often than the run's average epoch (step 0, the dense early
evaluations, the end), so the chapter's *average* epoch is the measured one with its evaluations
replaced by the run's mean count per epoch, each costing the measured evaluation time.

    python benchmarks/inception_epoch.py [--rows BN-x30 Inception] [--rounds 2] [--threads 2]
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
from bn_utils import data
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


def chapter_epoch(rc: inc.RunConfig) -> tuple[float, int]:
    """Return the seconds of one epoch of ``train_run`` (checkpointing as the chapter does) and
    the number of test-set evaluations it made."""
    one = rc.replace(epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = experiment.train_run(one, checkpoint=Path(tmp) / "run.pt")
        seconds = time.perf_counter() - t0
    hist = out["history"]
    return seconds, len(hist["eval_step"]) + len(hist["measure_step"]) + 1   # + the final logits


def evals_per_epoch(rc: inc.RunConfig) -> float:
    """Return the test-set evaluations of the whole run ``rc`` per epoch (step 0, regular, dense,
    the final logits)."""
    regular = len(range(0, rc.steps, rc.steps_per_epoch // rc.evals_per_epoch)) + 1
    return (regular + len(training.dense_eval_steps(rc)) + 1) / rc.epochs


def parts(rc: inc.RunConfig, x_tr, y_tr, x_te, y_te) -> dict:
    """Return the seconds per epoch of batching and augmentation, and of one evaluation."""
    batches = data.batches(x_tr, y_tr, rc.batch_size, seed=0)
    aug = augment.Augment(pad=rc.pad, flip=rc.flip, jitter=rc.jitter, channels_last=rc.channels_last)
    n = 200
    t0 = time.perf_counter()
    raw = [next(batches) for _ in range(n)]
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    for xb, _ in raw:
        aug(xb)
    t_aug = time.perf_counter() - t0
    model = experiment.build_model(rc)
    t0 = time.perf_counter()
    training.scores(training.predict(model, x_te), y_te)
    t_eval = time.perf_counter() - t0
    scale = rc.steps_per_epoch / n
    return {"batching": t_batch * scale, "augmentation": t_aug * scale, "evaluation": t_eval}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["BN-x30", "Inception"], choices=tuple(inc.ROWS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = inc.AblationConfig.for_profile("reference")
    x_tr, y_tr, x_te, y_te = training.cifar_uint8(cfg.n_train, cfg.n_test, "cpu")
    x_plain = augment.normalise(x_tr)   # the plain loop normalises once, up front
    print(f"torch {torch.__version__}, {args.threads} intra-op thread(s), {args.rounds} rounds, "
          f"reference profile, {cfg.n_train:,} training images (median of the rounds)")
    for row in args.rows:
        rc = cfg.run_config(row, 0)
        plain, chapter, n_evals = [], [], 0
        for _ in range(args.rounds):
            plain.append(plain_epoch(rc, x_plain, y_tr))
            seconds, n_evals = chapter_epoch(rc)
            chapter.append(seconds)
        p = parts(rc, x_tr, y_tr, x_te, y_te)
        t_plain, t_first = statistics.median(plain), statistics.median(chapter)
        mean_evals = evals_per_epoch(rc)
        t_mean = t_first + (mean_evals - n_evals) * p["evaluation"]
        train_part = t_first - n_evals * p["evaluation"] - p["batching"] - p["augmentation"]
        print(f"\n{row} ({rc.epochs} epochs, {rc.steps_per_epoch} steps of {rc.batch_size} per epoch)")
        print(f"  plain PyTorch loop, one epoch:           {t_plain:6.1f} s")
        print(f"  chapter, first epoch ({n_evals} evaluations):   {t_first:6.1f} s")
        print(f"  chapter, the run's mean epoch ({mean_evals:.2f} evaluations): {t_mean:6.1f} s"
              f"  = {t_mean / t_plain:.2f}x the plain loop (target <= {TARGET}x)")
        print(f"  shares of the mean epoch: training steps {train_part / t_mean:.0%}, evaluations "
              f"{mean_evals * p['evaluation'] / t_mean:.0%} ({p['evaluation']:.2f} s each), "
              f"augmentation {p['augmentation'] / t_mean:.0%}, batching {p['batching'] / t_mean:.0%}")
        print(f"  whole run at this rate: {rc.epochs * t_mean / 60:.0f} min")


if __name__ == "__main__":
    main()
