"""`make check-versions`: the tests and every chapter (smoke) at another torch, as Colab has one.

Copies the checkout (its tracked and not-ignored files) to a temporary folder, so that the check
neither sees nor leaves anything in the working tree, and builds a throw-away venv WITHOUT
constraints.txt there, installs the given torch / torchvision / numpy
(default: the lowest that pyproject.toml claims) and the package with its [book] extra at whatever
pip picks for the rest, then runs pytest and nbval at smoke there. The outcome (versions, result,
minutes) is written to results/check_versions.json, which the README's compatibility line cites,
but only once every step has run: an install that fails writes nothing there.
It never deletes a folder it did not make: --venv DIR and DIR-src are emptied only when they hold
its marker file (or are empty, or absent); versions are checked before anything is touched.
Usage: python tools/check_versions.py [--torch V] [--torchvision V] [--numpy V] [--venv DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "results" / "check_versions.json"
MARKER = ".made-by-check-versions"  # in a folder this tool made, and may therefore empty
RELEASE = re.compile(r"\d+(\.\d+){1,3}")
# The first releases with wheels for Python 3.10, the oldest Python pyproject.toml allows: nothing
# older can install, so asking for it (a typo such as 0.0.0) fails before a venv is built.
FLOORS = {"torch": (1, 11), "torchvision": (0, 12), "numpy": (1, 21)}
STEPS = ("install", "pytest", "chapters at smoke")


class UsageError(ValueError):
    """A version or folder the check refuses before doing any work."""


def lower_bounds() -> dict[str, str]:
    """Return pyproject.toml's lower bounds of torch, torchvision and numpy."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {m.group(1): m.group(2) for d in deps if (m := re.match(r"([\w-]+)>=([\d.]+)", d))}
    return {k: found[k] for k in ("torch", "torchvision", "numpy")}


def check_versions(versions: dict[str, str]) -> dict[str, str]:
    """Return ``versions`` if each is a release (like 2.5.1) not older than FLOORS; else raise."""
    for name, version in versions.items():
        if not isinstance(version, str) or not RELEASE.fullmatch(version):
            raise UsageError(f"--{name} {version!r} is not a release version like 2.5.1")
        if tuple(int(p) for p in version.split(".")) < FLOORS[name]:
            floor = ".".join(map(str, FLOORS[name]))
            raise UsageError(f"--{name} {version} is older than {floor}, the first release "
                             f"for Python 3.10 (the oldest Python the package allows)")
    return versions


def claim_folder(path: Path, option: str) -> Path:
    """Return ``path`` empty but for the marker, having deleted only what this tool made there;
    raise UsageError for a file, a link, or a non-empty folder without the marker."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UsageError(f"{option} {path} is not a folder this tool made (a file or a link); "
                         f"choose another path")
    if path.is_dir() and any(path.iterdir()):
        if not (path / MARKER).is_file():
            raise UsageError(f"{option} {path} is a non-empty folder this tool did not make "
                             f"(no {MARKER} in it): refusing to empty it; choose another path "
                             f"or delete it yourself")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by tools/check_versions.py, which may empty it again\n")
    return path


def snapshot(dest: Path) -> Path:
    """Copy the checkout's tracked and untracked-but-not-ignored files into ``dest`` (claimed
    empty by claim_folder); return it."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def run(cmd: list[str], log, **kw) -> int:
    print("$", " ".join(cmd), file=log, flush=True)
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, **kw).returncode


def run_steps(venv: Path, src: Path, versions: dict[str, str], log) -> list[dict]:
    """Build the venv in ``venv`` (already claimed) and run the steps until one fails; return
    each step's exit status."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}
    env["BN_DATA_DIR"] = str(Path(env.get("BN_DATA_DIR", REPO.parent / "shared" / "data")).resolve())
    py = str(venv / "bin" / "python")
    # No --clear: claim_folder emptied it, and the marker must stay in it.
    if run([sys.executable, "-m", "venv", str(venv)], log) != 0:
        return [{"step": "venv", "exit": 1}]
    pins = [f"{k}=={v}" for k, v in versions.items()]
    commands = {
        "install": [py, "-m", "pip", "install", "-q", *pins, f"{src}[book]"],
        "pytest": [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                   "--ignore=tests/test_built_book.py"],
        "chapters at smoke": [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                              "chapters"],
    }
    steps = []
    for name in STEPS:
        rc = run(commands[name], log, cwd=src, env={**env, "BN_PROFILE": "smoke"})
        steps.append({"step": name, "exit": rc})
        if rc != 0:
            break
    return steps


def completed(steps: list[dict]) -> bool:
    """Return whether the run tested anything: the versions installed and the tests ran (a
    failing pytest is an outcome worth recording; a failed install says nothing of them)."""
    return len(steps) >= 2 and steps[0] == {"step": "install", "exit": 0}


def write_record(record: dict, path: Path = RECORD) -> bool:
    """Write ``record`` to ``path`` if its run completed; return whether it was written."""
    if not completed(record["steps"]):
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)  # never a half-written record where the README points
    return True


def parse(argv: list[str]) -> tuple[dict[str, str], Path]:
    """Return (versions, venv folder) from the command line, both checked."""
    low = lower_bounds()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in low:
        ap.add_argument(f"--{name}", default=low[name])
    ap.add_argument("--venv", default="/tmp/bn-check-versions")
    args = ap.parse_args(argv)
    return check_versions({k: getattr(args, k) for k in low}), Path(args.venv).absolute()


def main(argv: list[str] | None = None) -> int:
    try:
        versions, venv = parse(sys.argv[1:] if argv is None else argv)
        src = venv.parent / (venv.name + "-src")
        claim_folder(venv, "--venv")
        claim_folder(src, "--venv (its -src copy)")
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t0, log_path = time.time(), REPO / "_build" / "check_versions.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        steps = run_steps(venv, snapshot(src), versions, log)
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True)
    got = {l.split("==")[0].lower(): l.split("==")[1] for l in freeze.stdout.splitlines() if "==" in l}
    record = {"asked": versions, "installed": {k: got.get(k) for k in versions},
              "passed": [s["exit"] for s in steps] == [0] * len(STEPS), "steps": steps,
              "minutes": round((time.time() - t0) / 60, 1), "date": dt.date.today().isoformat(),
              "python": sys.version.split()[0], "log": str(log_path.relative_to(REPO))}
    print(json.dumps(record, indent=1))
    if not write_record(record):
        print(f"error: the run stopped at {steps[-1]['step']!r} (see {record['log']}); "
              f"{RECORD.relative_to(REPO)} is left as it was", file=sys.stderr)
        return 1
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
