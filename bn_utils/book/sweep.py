"""Sweeps over chapters × parameters on submitit: one job per grid point, locally or on Slurm.

    python -m bn_utils.book.sweep 01 --profile smoke -p seed 0,1 --executor local
    python -m bn_utils.book.sweep 05 --profile full -p seeds 0,1,2 -p lr_scale 0.5,1 \\
        --executor slurm --partition gpu --gpus-per-job 1 --time 240

Every grid point (one value per ``-p`` name; the grid is their product) is one job, and each job
is one papermill run of the chapter (:func:`bn_utils.book.run.run_chapter`) writing its records to
``--results`` (default ``results/``). A job that ends well leaves, in the sweep's folder, its
executed notebook and a manifest (``<point>.json``) naming the records the chapter wrote or reused;
a rerun skips the points whose manifest's records are all still stored (and trusted), so a killed
sweep resumes. A failed job is reported with its log and the others go on; a table sums up.
Every grid value is checked against the chapter's configuration before any job is submitted, and
so are the options (``--parallel`` >= 1, ``--time`` > 0, ``--out`` a folder, the runner's checks);
a grid of more than 100 points needs ``--yes``.
``-p seed`` is read as ``-p seeds`` in the chapters whose parameter is a tuple of seeds.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import results, run
from ..runtime import atomic_write_bytes
from .profiles import check_profile

EXECUTORS = ("local", "slurm")
MAX_POINTS = 100  # a larger grid is more likely a typo than a plan: it needs --yes


def split_values(text: str) -> list:
    """Return the values of a grid list ``0,1,2`` or ``(0, 1),(2, 3)`` (commas inside brackets
    belong to a value), each read as a Python literal when it is one."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if any(not p.strip() for p in parts):
        raise ValueError(f"empty value in the grid list {text!r}")
    return [run.parse_value(p.strip()) for p in parts]


def setup_config(nb: Path):
    """Return ``(Config class, {notebook parameter: config field})`` that the chapter's setup cell
    builds (read as the runner reads it: :func:`run.config_call`), or ``(None, {})``."""
    found = run.config_call(nb)
    if found is None:
        return None, {}
    cls, keywords = found
    return cls, {param: field for field, param in keywords.items()}


def point_name(chapter: str, profile: str, point: dict) -> str:
    """Return a file-name-safe name of one grid point, e.g. ``01_covariate_shift__smoke__seed-3``."""
    parts = [f"{k}-{v}" for k, v in point.items()]
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "", "_".join(p.replace(" ", "") for p in parts))
    return f"{chapter}__{profile}" + (f"__{slug}" if slug else "")


def grid(chapter: str, profile: str, values: dict[str, list]) -> list[dict]:
    """Return the grid points (dicts of notebook parameters) after checking every one against the
    chapter's parameters and configuration; raise ValueError on the first bad name or value."""
    check_profile(profile)
    nb = run.resolve_chapter(chapter)
    declared = run.notebook_parameters(nb)
    values = dict(values)
    if "seed" in values and "seed" not in declared and "seeds" in declared and "seeds" not in values:
        values = {("seeds" if k == "seed" else k): v for k, v in values.items()}
    unknown = sorted(set(values) - set(declared) | ({"profile"} & set(values)))
    if unknown:
        allowed = ", ".join(k for k in declared if k != "profile")
        raise ValueError(f"unknown parameter {', '.join(unknown)} for {nb.stem}; allowed: {allowed}")
    points = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    cls, fields = setup_config(nb)
    if cls is not None:
        for point in points:
            try:
                cls.for_profile(profile, **{fields[k]: v for k, v in point.items() if k in fields})
            except (ValueError, TypeError) as err:
                raise ValueError(f"{nb.stem}, grid point {point}: {err}") from None
    return points


@dataclass
class Sweep:
    """Where a sweep keeps its jobs' notebooks, manifests and logs, and where records go."""

    chapter: str
    profile: str
    folder: Path
    results: Path
    device: str | None = None
    timeout_s: int | None = None
    points: list = field(default_factory=list)

    def manifest(self, point: dict) -> Path:
        """Return the path of a point's manifest (written when its job ends well)."""
        return self.folder / f"{point_name(self.chapter, self.profile, point)}.json"

    def stored(self, point: dict) -> bool:
        """Return True if the point's job ended well and its records are all still stored."""
        try:
            done = json.loads(self.manifest(point).read_text())
        except (OSError, ValueError):
            return False
        return all(results.is_trusted(p) for p in done.get("records", []))


def run_point(sweep: Sweep, point: dict) -> dict:
    """Run one grid point (a submitit job): execute the chapter, write the point's manifest; return it."""
    name = point_name(sweep.chapter, sweep.profile, point)
    sweep.folder.mkdir(parents=True, exist_ok=True)
    log = sweep.folder / f".{name}.records"
    log.unlink(missing_ok=True)
    os.environ["BN_RECORD_LOG"] = str(log)  # the kernel inherits it: results.load_or_run notes there
    t0 = time.perf_counter()
    try:
        notebook = run.run_chapter(sweep.chapter, sweep.profile, point, out=sweep.folder,
                                   results=sweep.results, device=sweep.device,
                                   timeout_s=sweep.timeout_s, name=name)
    except Exception as err:  # papermill's error carries the whole notebook; keep the cell's
        raise RuntimeError(run.nb_error(err)) from None
    finally:
        os.environ.pop("BN_RECORD_LOG", None)
    records = sorted(set(log.read_text().split())) if log.exists() else []
    log.unlink(missing_ok=True)
    done = {"chapter": sweep.chapter, "profile": sweep.profile, "point": point,
            "notebook": str(notebook), "records": records,
            "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_bytes(sweep.manifest(point), json.dumps(done, indent=1).encode())
    return done


def executor(kind: str, folder: Path, *, time_min: int, gpus: int, partition: str | None = None,
             cpus: int | None = None, mem_gb: float | None = None, parallel: int | None = None):
    """Return a submitit executor: ``local`` (jobs as subprocesses here) or ``slurm``."""
    import submitit

    if kind == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=time_min, gpus_per_node=gpus)
        return ex
    if kind == "slurm":
        try:
            ex = submitit.SlurmExecutor(folder=folder)
        except RuntimeError as err:
            raise ValueError(f"--executor slurm: {err}") from None
        ex.update_parameters(**slurm_parameters(time_min=time_min, gpus=gpus, partition=partition,
                                                cpus=cpus, mem_gb=mem_gb, parallel=parallel))
        return ex
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")


def slurm_parameters(*, time_min: int, gpus: int, partition: str | None, cpus: int | None,
                     mem_gb: float | None, parallel: int | None) -> dict:
    """Return the SlurmExecutor parameters of one sweep job (what its sbatch file asks for)."""
    params = {"job_name": "bn-sweep", "time": time_min, "partition": partition,
              "cpus_per_task": cpus, "mem": f"{mem_gb:g}GB" if mem_gb else None,
              "gpus_per_node": gpus or None, "array_parallelism": parallel or 256}
    return {k: v for k, v in params.items() if v is not None}


def submit(sweep: Sweep, ex, points: list[dict], parallel: int) -> list[dict]:
    """Submit the points (at most ``parallel`` running at once), wait for all; return one row per
    point: its status (ran / failed), seconds, records and job log."""
    pending, running, rows = list(points), [], []
    while pending or running:
        while pending and len(running) < parallel:
            point = pending.pop(0)
            running.append((point, ex.submit(run_point, sweep, point)))
        finished = [(p, j) for p, j in running if j.done()]
        if not finished:
            time.sleep(1.0)
            continue
        for point, job in finished:
            running.remove((point, job))
            rows.append(_row(point, job))
    return rows


def _row(point: dict, job) -> dict:
    """Return the summary row of a finished job."""
    try:
        done = job.result()
        return {"point": point, "status": "ran", "seconds": done["seconds"],
                "records": len(done["records"]), "log": str(job.paths.stdout)}
    except Exception as err:  # noqa: BLE001 - a failed job is reported, the sweep goes on
        return {"point": point, "status": "failed", "seconds": None, "records": 0,
                "log": str(job.paths.stderr), "error": job_error(str(err))}


def job_error(text: str) -> str:
    """Return the exception a failed submitit job raised (its traceback's last, unindented lines)."""
    trace = text.split("-" * 22)[1] if text.count("-" * 22) >= 2 else text
    lines = trace.strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith(" ")]
    return "\n".join(lines[frames[-1] + 1:] if frames else lines).strip()


def sweep(chapter: str, profile: str, values: dict[str, list], *, executor_kind: str = "local",
          folder: Path | str | None = None, results_dir: Path | str | None = None,
          device: str | None = None, timeout_s: int | None = None, time_min: int = 120,
          gpus: int = 0, partition: str | None = None, cpus: int | None = None,
          mem_gb: float | None = None, parallel: int | None = None,
          yes: bool = False) -> list[dict]:
    """Run every grid point not already stored as one job; return one summary row per point.
    Every option is checked before the first job is submitted (:func:`check_options`)."""
    if executor_kind not in EXECUTORS:
        raise ValueError(f"unknown executor {executor_kind!r}; choose one of {', '.join(EXECUTORS)}")
    points = grid(chapter, profile, values)
    check_options(points, parallel=parallel, time_min=time_min, yes=yes)
    run.check_run_options(device, timeout_s)
    stem = run.resolve_chapter(chapter).stem
    folder = run.check_out(folder or results.REPO_DIR / "runs" / "sweeps" / f"{stem}__{profile}")
    where = run.results_folder(results_dir)
    sw = Sweep(stem, profile, folder, where, device, timeout_s, points)
    rows = [{"point": p, "status": "stored", "seconds": None, "records": None, "log": ""}
            for p in points if sw.stored(p)]
    todo = [p for p in points if not sw.stored(p)]
    if todo:
        parallel = parallel or (1 if executor_kind == "local" else len(todo))
        ex = executor(executor_kind, folder / "logs", time_min=time_min, gpus=gpus,
                      partition=partition, cpus=cpus, mem_gb=mem_gb, parallel=parallel)
        rows += submit(sw, ex, todo, parallel)
    order = {point_name(stem, profile, p): i for i, p in enumerate(points)}
    return sorted(rows, key=lambda r: order[point_name(stem, profile, r["point"])])


def check_options(points: list[dict], *, parallel: int | None, time_min: int, yes: bool) -> None:
    """Raise ValueError, naming the option, for ``--parallel`` below 1 (it would never submit a
    job and wait forever), ``--time`` not positive, or more than MAX_POINTS points without ``yes``."""
    if parallel is not None and parallel < 1:
        raise ValueError(f"--parallel {parallel} must be at least 1 (jobs at once)")
    if time_min <= 0:
        raise ValueError(f"--time {time_min} must be a positive number of minutes")
    if len(points) > MAX_POINTS and not yes:
        raise ValueError(f"{len(points)} grid points (more than {MAX_POINTS}): add --yes to run "
                         "them all")


def summary(rows: list[dict]):
    """Return the sweep's summary as a :class:`bn_utils.book.Table` (one line per grid point)."""
    from .page import Table

    return Table([{"point": ", ".join(f"{k}={v!r}" for k, v in r["point"].items()) or "(defaults)",
                   "status": r["status"], "seconds": r["seconds"], "records": r["records"],
                   "log": r["log"] if r["status"] == "failed" else ""} for r in rows],
                 fmt={"seconds": "{:.0f}"})


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a job failed)."""
    parser = run.chapter_parser("python -m bn_utils.book.sweep", __doc__, "V1,V2,...",
                                "grid values of a parameter (repeatable)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.add_argument("--partition", default=None, help="Slurm partition")
    parser.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per job (default 0)")
    parser.add_argument("--cpus-per-job", type=int, default=None, help="CPU cores per job (Slurm)")
    parser.add_argument("--mem-gb", type=float, default=None, help="memory per job (Slurm)")
    parser.add_argument("--time", type=int, default=120, help="minutes per job (default 120)")
    parser.add_argument("--parallel", type=int, default=None,
                        help="jobs at once (default: 1 locally, all on Slurm)")
    parser.add_argument("--out", default=None,
                        help="sweep folder (default runs/sweeps/<chapter>__<profile>)")
    parser.add_argument("--yes", action="store_true",
                        help=f"run a grid of more than {MAX_POINTS} points")
    args = parser.parse_args(argv)
    if args.chapter is None:
        parser.error("the following arguments are required: chapter")
    try:
        values = {}
        for name, text in args.parameter:
            if name in values:
                raise ValueError(f"parameter {name} is given twice; list its values once: -p {name} V1,V2")
            values[name] = split_values(text)
        rows = sweep(args.chapter, args.profile, values, executor_kind=args.executor,
                     folder=args.out, results_dir=args.results, device=args.device,
                     timeout_s=args.timeout, time_min=args.time, gpus=args.gpus_per_job,
                     partition=args.partition, cpus=args.cpus_per_job, mem_gb=args.mem_gb,
                     parallel=args.parallel, yes=args.yes)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(rows))
    for r in rows:
        if r["status"] == "failed":
            print(f"failed: {r['point']}: {r['error']}\n  log: {r['log']}", file=sys.stderr)
    return 1 if any(r["status"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
