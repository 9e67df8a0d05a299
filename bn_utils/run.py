"""Headless reruns of a chapter through papermill: how the GPU (``full``) runs are made.

    python -m bn_utils.run 04_mnist --profile full
    python -m bn_utils.run 02_forward_pass --profile smoke -p seed 3 --out /tmp/x

writes the executed notebook (parameters injected, visible in it) to ``--out`` (default ``runs/``)
as ``<chapter>__<profile>.ipynb``; the chapter's results go to ``--results`` (default: the
checkout's ``results/``, where full-profile results are committed). An unknown chapter, profile or
parameter fails with one message before anything runs; a failed run leaves no notebook behind.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import time
from pathlib import Path

from .profiles import PROFILES, check_profile
from .results import REPO_DIR

CHAPTERS_DIR = REPO_DIR / "chapters"
KERNEL = "python3"  # resolves to the interpreter running this module (jupyter_client's rule)


def chapters() -> list[str]:
    """Return the chapter names (notebook stems) in the checkout, in book order."""
    return sorted(p.stem for p in CHAPTERS_DIR.glob("[0-9][0-9]_*.ipynb"))


def resolve_chapter(name: str) -> Path:
    """Return the notebook of chapter ``name`` (``04_mnist``, ``04`` or ``mnist``), or raise."""
    names = chapters()
    matches = [c for c in names if name in (c, c[:2], c[3:]) or c == Path(name).stem]
    if len(matches) != 1:
        raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(names)}")
    return CHAPTERS_DIR / f"{matches[0]}.ipynb"


def parse_value(text: str):
    """Return a Python literal for a ``-p`` value (``3``, ``0.1``, ``(0, 1)``, ``True``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_parameters(path: Path) -> dict:
    """Return the names and defaults declared in a notebook's ``parameters`` cell."""
    import papermill

    return {name: spec["default"] for name, spec in papermill.inspect_notebook(str(path)).items()}


def run_chapter(chapter: str, profile: str, params: dict | None = None, *,
                out: Path | str = "runs", results: Path | str | None = None,
                device: str | None = None, timeout_s: int | None = None,
                name: str | None = None) -> Path:
    """Execute a chapter at ``profile`` with ``params``; return the executed notebook's path
    (``out/<name>.ipynb``, by default ``<chapter>__<profile>.ipynb``)."""
    import papermill

    check_profile(profile)
    nb = resolve_chapter(chapter)
    params = dict(params or {})
    declared = notebook_parameters(nb)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        allowed = ", ".join(k for k in declared if k != "profile")
        raise ValueError(f"unknown parameter {', '.join(unknown)} for {nb.stem}; allowed: {allowed}")
    if "profile" in params:
        raise ValueError("give the profile with --profile, not -p profile")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name or f'{nb.stem}__{profile}'}.ipynb"
    env = {"BN_PROFILE": profile}
    if results is not None:
        env["BN_RESULTS_DIR"] = str(Path(results).resolve())
    if device is not None:
        env["BN_DEVICE"] = device
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process' environment
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{target.stem}.", suffix=".ipynb")
    os.close(fd)
    try:
        papermill.execute_notebook(str(nb), tmp, parameters={"profile": profile, **params},
                                   kernel_name=KERNEL, cwd=str(CHAPTERS_DIR), log_output=False,
                                   progress_bar=sys.stderr.isatty(), execution_timeout=timeout_s)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return target


def chapter_parser(prog: str, doc: str, value: str = "VALUE",
                   value_help: str = "override a parameter (repeatable)") -> argparse.ArgumentParser:
    """Return a parser with the arguments of every chapter command: the chapter, ``--profile``,
    ``-p NAME VALUE`` (repeatable), ``--results``, ``--device`` and ``--timeout``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", help="chapter name, e.g. 04_mnist (or 04, or mnist)")
    parser.add_argument("--profile", default=os.environ.get("BN_PROFILE", "quick"),
                        help=f"one of {', '.join(PROFILES)} (default: $BN_PROFILE or quick)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", value), help=value_help)
    parser.add_argument("--results", default=None, help="results folder (default: results/)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = chapter_parser("python -m bn_utils.run", __doc__)
    parser.add_argument("--out", default=str(REPO_DIR / "runs"), help="folder for the executed notebook")
    parser.add_argument("--list", action="store_true", help="list the chapters and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(chapters()))
        return 0
    params = {name: parse_value(value) for name, value in args.parameter}
    t0 = time.perf_counter()
    try:
        target = run_chapter(args.chapter, args.profile, params, out=args.out,
                             results=args.results, device=args.device, timeout_s=args.timeout)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - papermill's execution error carries the cell's traceback
        print(f"error: {nb_error(err)}", file=sys.stderr)
        return 1
    from .results import results_dir

    where = Path(args.results).resolve() if args.results else results_dir()
    print(f"executed {target} in {time.perf_counter() - t0:.0f} s; results in {where}")
    return 0


def nb_error(err: Exception) -> str:
    """Return a failed cell's error and the end of its traceback (papermill), or the error itself."""
    import re

    name, value = getattr(err, "ename", None), getattr(err, "evalue", None)
    if not name:
        return f"{type(err).__name__}: {err}"
    lines = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(getattr(err, "traceback", []) or [])).splitlines()
    where = "\n".join(lines[-12:-1])
    return f"the chapter failed: {name}: {value}" + (f"\n{where}" if where else "")


if __name__ == "__main__":
    sys.exit(main())
