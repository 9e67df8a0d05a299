"""Train the single runs of chapters 05 and 06 (one record per (row, seed) or ensemble member),
then the extra records of chapters 07-09 (their extra seeds, GA searches, timing runs and test
images), in the background, on several one-thread workers, most informative runs first.

    python tools/train_runs.py --profile reference --workers 2 [--list]

Each run stores its record under ``results/`` when it finishes (chapters 05-08's long runs
checkpoint as they go: every epoch, every ``checkpoint_every`` steps), so a killed queue resumes
where it stopped (stored runs are skipped). The chapters then assemble their tables from the
stored runs (``python -m bn_utils.book.run 05``; chapters 07-09 merge their extra records in when they
read their records). On a 2-core CPU two one-thread workers train about 1.8 times as fast as one
two-thread run. ``--list`` prints every run still to do, with its length and, for chapters
07-09, its estimated minutes on one thread (from the seed-0 record's own time).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import dataclass

# one thread trains chapters 07-08's VGGs about 1.6 times slower than the two their seed-0
# records were made with (the chapters' notes); the DLNs are too small to gain from a second
ONE_THREAD_SLOWER = 1.6


@dataclass(frozen=True)
class Job:
    """One run of the queue: the record ``name`` of ``chapter`` stored under ``cfg``; ``what``
    (its length, for --list), ``minutes`` (an estimate on one thread, or None), and what trains it:
    chapters 07-08's ``run`` (a santurkar.Run), chapter 09's ``base`` config (its extra record)."""

    chapter: str
    name: str
    cfg: object
    what: str
    minutes: float | None = None
    run: object = None
    base: object = None


def planned(profile: str) -> list[tuple[str, object]]:
    """Return ``(chapter, RunConfig)`` of every run of chapters 05 and 06 at ``profile``: seed
    by seed (all of seed 0 first, so the table has every row early), Inception first in each."""
    from bn_utils.experiments import ch06_ensemble as ensemble, ch05_cifar_inception as inception

    cfg = inception.AblationConfig.for_profile(profile)
    runs = [(inception.CHAPTER, cfg.run_config(row, seed)) for seed in cfg.seeds for row in cfg.rows]
    ens = ensemble.EnsembleConfig.for_profile(profile)
    runs += [ens.member(name)[::-1] for name in ens.members]
    seen, out = set(), []
    for chapter, rc in runs:
        if (chapter, rc.name, rc.digest()) not in seen:
            seen.add((chapter, rc.name, rc.digest()))
            out.append((chapter, rc))
    return out


def _seconds(chapter: str, name: str, cfg) -> float | None:
    """Return the training seconds of a stored record (its own ``seconds``, else its meta's)."""
    from bn_utils.book import results

    record = results.load(chapter, name, cfg)
    if record is None:
        return None
    return record.metrics.get("seconds", record.meta.get("seconds"))


def planned_extra(profile: str) -> list[Job]:
    """Return the extra records of chapters 07-09 at ``profile``: chapter 09's first (minutes
    each), then seed by seed (a second seed gives a spread), the DLNs before the VGGs."""
    from bn_utils.experiments import (
        ch09_in_practice as in_practice, ch07_santurkar_noise as noise,
        ch08_santurkar_smoothness as smoothness)

    jobs = []
    cfg9 = in_practice.PracticeConfig.for_profile(profile)
    for name, (experiment, c) in cfg9.extra_records().items():
        seconds = _seconds(in_practice.CHAPTER, experiment, cfg9)     # the record it repeats took as long
        changed = ", ".join(f"{k}={v}" for k, v in c.changes().items())
        jobs.append(Job(in_practice.CHAPTER, name, c, f"{experiment} with {changed or 'the same config (a repeat)'}",
                        None if seconds is None else seconds / 60, base=cfg9))
    by_seed: dict = {}
    for module, cls in ((noise, noise.NoiseConfig), (smoothness, smoothness.SmoothnessConfig)):
        cfg = cls.for_profile(profile)
        for c, run in module.extra_runs(cfg):
            steps = c.vgg_steps if run.arch == "vgg" else c.dln_steps
            seconds = _seconds(module.CHAPTER, f"{run.group}_s{cfg.seeds[0]}", cfg)   # seed 0's time
            slower = ONE_THREAD_SLOWER if run.arch == "vgg" else 1.0
            minutes = None if seconds is None else slower * seconds / 60
            by_seed.setdefault(run.seed, []).append(Job(module.CHAPTER, run.name, c, f"{steps} steps", minutes, run=run))
    for seed in sorted(by_seed):
        jobs += sorted(by_seed[seed], key=lambda j: j.run.arch != "dln")
    return jobs


def jobs(profile: str) -> list[Job]:
    """Return every run of the queue at ``profile``: chapters 05-06's, then chapters 07-09's extras."""
    return [Job(chapter, rc.name, rc, f"{rc.epochs} epochs") for chapter, rc in planned(profile)] + planned_extra(profile)


def is_stored(job: Job) -> bool:
    """Return whether the run's record is stored (and would be reused)."""
    from bn_utils.book import results

    return results.load(job.chapter, job.name, job.cfg) is not None


def run_job(job: Job) -> None:
    """Train one run and store its record (resuming from its checkpoint if it has one)."""
    from bn_utils.experiments import (
        ch05_cifar_inception as inception, ch07_santurkar_noise as noise, santurkar,
        ch08_santurkar_smoothness as smoothness)
    from bn_utils.experiments.ch09_in_practice import experiment

    if job.chapter in (noise.CHAPTER, smoothness.CHAPTER):
        hooks = noise.make_hooks if job.chapter == noise.CHAPTER else smoothness.make_hooks
        santurkar.run_one(job.chapter, job.cfg, job.run, hooks)
    elif job.base is not None:
        experiment.run_extra(job.name, job.base)
    else:
        inception.run_one(job.cfg, job.chapter)


def worker(queue, log_dir: str) -> None:
    """Train runs from ``queue`` until it is empty (one intra-op thread)."""
    import torch

    torch.set_num_threads(1)

    while True:
        try:
            job = queue.get_nowait()
        except Exception:
            return
        if is_stored(job):
            continue
        t0 = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] start {job.chapter}/{job.name}", flush=True)
        try:
            with open(os.path.join(log_dir, f"{job.chapter}_{job.name}.log"), "a") as log:
                sys.stderr = log
                run_job(job)
                sys.stderr = sys.__stderr__
            print(f"[{time.strftime('%H:%M:%S')}] done  {job.chapter}/{job.name} "
                  f"({(time.time() - t0) / 60:.1f} min)", flush=True)
        except Exception:
            sys.stderr = sys.__stderr__
            print(f"[{time.strftime('%H:%M:%S')}] FAILED {job.chapter}/{job.name}\n"
                  f"{traceback.format_exc()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="reference", choices=("reference", "full", "quick", "smoke"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-dir", default="runs/train_runs")
    parser.add_argument("--list", action="store_true", help="print the planned runs and stop")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers {args.workers} must be >= 1")
    todo = [job for job in jobs(args.profile) if not is_stored(job)]
    for job in todo:
        estimate = "" if job.minutes is None else f", about {job.minutes:.0f} min on one thread"
        print(f"{job.chapter}/{job.name}: {job.what}{estimate}")
    if args.list or not todo:
        return 0
    os.makedirs(args.log_dir, exist_ok=True)
    os.environ.setdefault("BN_PROGRESS", "0")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for item in todo:
        queue.put(item)
    procs = [ctx.Process(target=worker, args=(queue, args.log_dir)) for _ in range(args.workers)]
    for p in procs:
        p.start()
        time.sleep(1)
    for p in procs:
        p.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
