"""Headless reruns of a chapter through papermill: how the GPU (``full``) runs are made.

    python -m bn_utils.book.run 04_mnist --profile full
    python -m bn_utils.book.run 02_forward_pass --profile smoke -p seed 3 --out /tmp/x
    python -m bn_utils.book.run 04 --profile smoke -p seeds 0,1 -p activations sigmoid,relu
    python -m bn_utils.book.run --list

writes the executed notebook (parameters injected, visible in it) to ``--out`` (default ``runs/``)
as ``<chapter>__<profile>.ipynb``; the chapter's results go to ``--results`` (default: the
checkout's ``results/``, where full-profile results are committed). Before anything runs, the
runner builds the chapter's configuration from the parameters and checks that both folders are
writable, ``--out`` outside chapters/, the device (``--device`` or ``BN_DEVICE``) present,
``--timeout`` positive and ``BN_DATA_DIR`` a folder: an unknown chapter, profile or parameter, a
parameter given twice, a nonsense value, a symlink loop or an unusable folder or device fails
with one line naming it (exit status 2). A failed or killed (SIGTERM) run leaves no notebook
behind. Warnings about stored records (one treated as missing) are printed on stderr as well as
in the executed notebook.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

from ..files import resolved
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


SCALARS = (str, bool, int, float, type(None))


def parse_value(text: str):
    """Return a ``-p`` value: a number, ``True``/``False``/``None``, a list for ``0,1``, ``(0, 1)``
    or ``[0, 1]``, else the text itself; raise ValueError for other Python literals.

    Only these types reach papermill, which writes numbers and lists of them verbatim and
    strings escaped (it would write a tuple unescaped, as code)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return _safe(f"value {text!r}", value)


def _safe(what: str, value):
    """Return ``value`` in a form papermill writes safely (tuples as lists), or raise ValueError."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, SCALARS) for v in value):
        return list(value)
    if isinstance(value, SCALARS):
        return value
    raise ValueError(f"{what}: a {type(value).__name__} is not allowed; give a number, a string, "
                     "True/False/None, or a list of those (0,1)")


def notebook_parameters(path: Path) -> dict:
    """Return the names and defaults declared in a notebook's ``parameters`` cell."""
    import papermill

    return {name: spec["default"] for name, spec in papermill.inspect_notebook(str(path)).items()}


# The configuration class each chapter builds (``<Class>.for_profile(profile, name=name, ...)`` in
# its setup cell, with one keyword per notebook parameter of the same name; tests/book/test_run.py
# checks this table against the notebooks). Imported when needed, so ``--help`` stays fast.
CONFIGS = {
    "01_covariate_shift": "bn_utils.experiments.ch01_covariate_shift:ShiftConfig",
    "02_forward_pass": "bn_utils.experiments.ch02_forward_pass:ForwardConfig",
    "03_backprop": "bn_utils.experiments.ch03_backprop:BackpropConfig",
    "04_mnist": "bn_utils.experiments.ch04_mnist:MnistConfig",
    "05_cifar_inception": "bn_utils.experiments.ch05_cifar_inception:AblationConfig",
    "06_ensemble": "bn_utils.experiments.ch06_ensemble:EnsembleConfig",
    "07_santurkar_noise": "bn_utils.experiments.ch07_santurkar_noise:NoiseConfig",
    "08_santurkar_smoothness": "bn_utils.experiments.ch08_santurkar_smoothness:SmoothnessConfig",
    "09_in_practice": "bn_utils.experiments.ch09_in_practice:PracticeConfig",
    "10_verdicts": None,
}


def config_call(nb: Path) -> tuple[type, dict] | None:
    """Return the config class chapter ``nb`` builds (:data:`CONFIGS`) and its keywords
    (``{field: notebook parameter name}``: the notebook's parameters that are fields of the class,
    but ``profile``), or None if it builds none."""
    import dataclasses

    where = CONFIGS.get(nb.stem)
    if where is None:
        return None
    module, name = where.split(":")
    cls = getattr(importlib.import_module(module), name)
    fields = {f.name for f in dataclasses.fields(cls)} - {"profile"}
    return cls, {p: p for p in notebook_parameters(nb) if p in fields}


def check_config(nb: Path, profile: str, params: dict) -> tuple:
    """Return ``(config, params)``: the chapter's configuration for ``profile`` and ``params``,
    built as its setup cell builds it (None if it builds none), and the parameters to inject, a
    string for a tuple field split at commas (``-p activations sigmoid,relu``); raise ValueError
    on a nonsense value."""
    import dataclasses

    found = config_call(nb)
    if found is None:
        return None, params
    cls, keywords = found
    tuples = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, tuple)}
    params = dict(params)
    for field, name in keywords.items():
        if field in tuples and isinstance(params.get(name), str):
            params[name] = [item.strip() for item in params[name].split(",")]
    cfg = cls.for_profile(profile, **{field: params.get(name) for field, name in keywords.items()})
    return cfg, params


def check_writable(folder: Path | str, what: str) -> Path:
    """Return ``folder`` resolved if it is, or can be created as, a writable folder; else raise
    ValueError saying why (a symlink loop, a file, a read-only folder). Creates nothing."""
    original, folder = folder, resolved(folder, what)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {original}: {probe} is a file, not a folder")
    # the mode bits too: as root, a folder marked read-only would still accept the probe file
    if not probe.stat().st_mode & 0o222 or not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {folder}: {probe} is not writable")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".bn-write-test.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise ValueError(f"{what} {folder}: {probe} is not writable ({err.strerror})") from None
    return folder


def check_out(folder: Path | str, what: str = "--out") -> Path:
    """Return the folder for executed notebooks, checked by :func:`check_writable` and outside
    chapters/ (where an executed notebook would become a page of the book); else raise ValueError."""
    out = check_writable(folder, what)
    if out == CHAPTERS_DIR or CHAPTERS_DIR in out.parents:
        raise ValueError(f"{what} {out} is inside chapters/, where the executed notebook would "
                         "become a chapter of the book; choose another folder")
    return out


def check_run_options(device: str | None, timeout_s: int | None) -> None:
    """Raise ValueError, naming the option or variable, unless the device (``--device``, else
    ``BN_DEVICE``) is usable here, ``--timeout`` is positive and ``BN_DATA_DIR`` is a folder:
    what the kernel would otherwise find only after it has started."""
    from ..runtime import check_device

    if device is not None:
        check_device(device, "--device")
    elif os.environ.get("BN_DEVICE"):
        check_device(os.environ["BN_DEVICE"], "BN_DEVICE")
    if timeout_s is not None and timeout_s <= 0:  # papermill reads 0 and below as "no limit"
        raise ValueError(f"--timeout {timeout_s} must be a positive number of seconds")
    data = os.environ.get("BN_DATA_DIR")
    if data and resolved(data, "BN_DATA_DIR").exists() and not Path(data).is_dir():
        raise ValueError(f"BN_DATA_DIR {data}: a file, not a folder")


def results_folder(results: Path | str | None) -> Path:
    """Return the folder records go to (``--results``, else ``BN_RESULTS_DIR``, else results/),
    checked by :func:`check_writable`."""
    from .results import results_dir

    if results is not None:
        return check_writable(results, "--results")
    if os.environ.get("BN_RESULTS_DIR"):
        return check_writable(os.environ["BN_RESULTS_DIR"], "BN_RESULTS_DIR")
    return check_writable(results_dir(), "--results")


def record_warnings(notebook: Path) -> list[str]:
    """Return the record warnings (a stored record treated as missing) that an executed
    notebook's cells printed, one line each, without their source location."""
    try:
        cells = json.loads(Path(notebook).read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a notebook papermill did not finish writing says nothing
    found = []
    for output in (o for c in cells for o in c.get("outputs", [])):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = output.get("text", "")
            for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                if "treated as missing" in line:
                    found.append(re.sub(r"^.*?\bUserWarning: ", "", line))
    return found


def _remove_stale_temporaries(out: Path, stem: str) -> None:
    """Delete the temporary notebooks that killed runs of ``stem`` left in ``out`` (their process
    is gone; a running one's file is kept)."""
    for tmp in out.glob(f".{stem}.*.ipynb"):
        match = re.match(rf"^\.{re.escape(stem)}\.(\d+)\.", tmp.name)
        if not match:
            continue  # not a temporary of run_chapter's (".<stem>.<pid>.<random>.ipynb")
        try:
            os.kill(int(match.group(1)), 0)
            continue  # that run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        tmp.unlink(missing_ok=True)


def run_chapter(chapter: str, profile: str, params: dict | None = None, *,
                out: Path | str = "runs", results: Path | str | None = None,
                device: str | None = None, timeout_s: int | None = None,
                name: str | None = None) -> Path:
    """Execute a chapter at ``profile`` with ``params``; return the executed notebook's path
    (``out/<name>.ipynb``, by default ``<chapter>__<profile>.ipynb``)."""
    import papermill

    check_profile(profile)
    nb = resolve_chapter(chapter)
    params = {name: _safe(f"parameter {name}", value) for name, value in (params or {}).items()}
    declared = notebook_parameters(nb)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        allowed = ", ".join(k for k in declared if k != "profile")
        raise ValueError(f"unknown parameter {', '.join(unknown)} for {nb.stem}; allowed: {allowed}")
    if "profile" in params:
        raise ValueError("give the profile with --profile, not -p profile")
    _, params = check_config(nb, profile, params)
    check_run_options(device, timeout_s)
    out = check_out(out)
    res = results_folder(results)
    if (res / nb.stem).exists():
        check_writable(res / nb.stem, "--results")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name or f'{nb.stem}__{profile}'}.ipynb"
    _remove_stale_temporaries(out, nb.stem)
    env = {"BN_PROFILE": profile}
    if results is not None:
        env["BN_RESULTS_DIR"] = str(res)
    if device is not None:
        env["BN_DEVICE"] = device
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process' environment
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{nb.stem}.{os.getpid()}.", suffix=".ipynb")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would make the executed notebook private
    os.close(fd)
    try:
        papermill.execute_notebook(str(nb), tmp, parameters={"profile": profile, **params},
                                   kernel_name=KERNEL, cwd=str(CHAPTERS_DIR), log_output=False,
                                   progress_bar=sys.stderr.isatty(), execution_timeout=timeout_s)
        os.replace(tmp, target)
    finally:
        # the warnings went to the notebook's outputs; whoever runs it should see them too
        for line in record_warnings(Path(tmp) if Path(tmp).exists() else target):
            print(f"warning: {line}", file=sys.stderr)
        Path(tmp).unlink(missing_ok=True)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return target


def parameters(pairs: list[list[str]]) -> dict:
    """Return the ``-p NAME VALUE`` pairs as a dict of parsed values; raise ValueError for a name
    given twice (which of the two was meant cannot be known)."""
    params: dict = {}
    for name, value in pairs:
        if name in params:
            raise ValueError(f"parameter {name} is given twice (-p {name} ...); give it once")
        params[name] = parse_value(value)
    return params


class Terminated(BaseException):
    """The run received SIGTERM (raised so that the temporary notebook and kernel are cleaned up)."""


def _terminate(signum, frame):
    raise Terminated(f"stopped by signal {signum}")


def chapter_parser(prog: str, doc: str, value: str = "VALUE",
                   value_help: str = "override a parameter (repeatable)") -> argparse.ArgumentParser:
    """Return a parser with the arguments of every chapter command: the chapter, ``--profile``,
    ``-p NAME VALUE`` (repeatable), ``--results``, ``--device`` and ``--timeout``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter", nargs="?", help="chapter name, e.g. 04_mnist (or 04, or mnist)")
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
    parser = chapter_parser("python -m bn_utils.book.run", __doc__)
    parser.add_argument("--out", default=str(REPO_DIR / "runs"), help="folder for the executed notebook")
    parser.add_argument("--list", action="store_true", help="list the chapters and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(chapters()))
        return 0
    if args.chapter is None:
        parser.error("the following arguments are required: chapter (or --list)")
    t0 = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        params = parameters(args.parameter)
        target = run_chapter(args.chapter, args.profile, params, out=args.out,
                             results=args.results, device=args.device, timeout_s=args.timeout)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Terminated as err:
        print(f"error: {err}; no notebook written", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as err:  # noqa: BLE001 - papermill's execution error carries the cell's traceback
        print(f"error: {nb_error(err)}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
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
