"""Train the single runs of chapters 05 and 06 (one record per (row, seed) or ensemble member)
in the background, on several one-thread workers, most informative runs first.

    python tools/train_runs.py --profile reference --workers 2 [--list]

Each run is ``inception.run_one``: it stores its record under ``results/`` when it finishes and
checkpoints every epoch, so a killed queue resumes where it stopped (stored runs are skipped).
The chapters then assemble their tables from the stored runs (``python -m bn_utils.run 05``).
On a 2-core CPU two one-thread workers train about 1.8 times as fast as one two-thread run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import traceback


def planned(profile: str) -> list[tuple[str, object]]:
    """Return ``(chapter, RunConfig)`` of every run of chapters 05 and 06 at ``profile``: seed
    by seed (all of seed 0 first, so the table has every row early), Inception first in each."""
    from bn_utils.experiments import ensemble, inception

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


def is_stored(chapter: str, rc) -> bool:
    """Return whether the run's record is stored (and would be reused)."""
    from bn_utils import results

    return results.load(chapter, rc.name, rc) is not None


def worker(queue, log_dir: str) -> None:
    """Train runs from ``queue`` until it is empty (one intra-op thread)."""
    import torch

    torch.set_num_threads(1)
    from bn_utils.experiments import inception

    while True:
        try:
            chapter, rc = queue.get_nowait()
        except Exception:
            return
        if is_stored(chapter, rc):
            continue
        t0 = time.time()
        print(f"[{time.strftime('%H:%M:%S')}] start {chapter}/{rc.name}", flush=True)
        try:
            with open(os.path.join(log_dir, f"{chapter}_{rc.name}.log"), "a") as log:
                sys.stderr = log
                inception.run_one(rc, chapter)
                sys.stderr = sys.__stderr__
            print(f"[{time.strftime('%H:%M:%S')}] done  {chapter}/{rc.name} "
                  f"({(time.time() - t0) / 60:.1f} min)", flush=True)
        except Exception:
            sys.stderr = sys.__stderr__
            print(f"[{time.strftime('%H:%M:%S')}] FAILED {chapter}/{rc.name}\n"
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
    todo = [(c, rc) for c, rc in planned(args.profile) if not is_stored(c, rc)]
    for chapter, rc in todo:
        print(f"{chapter}/{rc.name}: {rc.epochs} epochs")
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
