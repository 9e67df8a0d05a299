"""`make check-versions`: the tests and every chapter (smoke) at another torch, as Colab has one.

Copies the checkout (its tracked and not-ignored files) to a temporary folder, so that the check
neither sees nor leaves anything in the working tree, and builds a throw-away venv WITHOUT
constraints.txt there, installs the given torch / torchvision / numpy
(default: the lowest that pyproject.toml claims) and the package with its [book] extra at whatever
pip picks for the rest, then runs pytest and nbval at smoke there. The outcome (versions, result,
minutes) is written to results/check_versions.json, which the README's compatibility line cites.
Usage: python tools/check_versions.py [--torch V] [--torchvision V] [--numpy V] [--venv DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lower_bounds() -> dict[str, str]:
    """Return pyproject.toml's lower bounds of torch, torchvision and numpy."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    found = {m.group(1): m.group(2) for d in deps if (m := re.match(r"([\w-]+)>=([\d.]+)", d))}
    return {k: found[k] for k in ("torch", "torchvision", "numpy")}


def snapshot(dest: Path) -> Path:
    """Copy the checkout's tracked and untracked-but-not-ignored files to ``dest``; return it."""
    import shutil

    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    shutil.rmtree(dest, ignore_errors=True)
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def run(cmd: list[str], log, **kw) -> int:
    print("$", " ".join(cmd), file=log, flush=True)
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, **kw).returncode


def main() -> int:
    low = lower_bounds()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in low:
        ap.add_argument(f"--{name}", default=low[name])
    ap.add_argument("--venv", default="/tmp/bn-check-versions")
    args = ap.parse_args()
    versions = {k: getattr(args, k) for k in low}
    venv, t0 = Path(args.venv), time.time()
    py = venv / "bin" / "python"
    src = snapshot(venv.parent / (venv.name + "-src"))
    log_path = REPO / "_build" / "check_versions.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_CONSTRAINT")}
    env["BN_DATA_DIR"] = str(Path(env.get("BN_DATA_DIR", REPO.parent / "shared" / "data")).resolve())
    steps = []
    with open(log_path, "w") as log:
        ok = run([sys.executable, "-m", "venv", "--clear", str(venv)], log) == 0
        pins = [f"{k}=={v}" for k, v in versions.items()]
        for name, cmd in [
            ("install", [str(py), "-m", "pip", "install", "-q", *pins, f"{src}[book]"]),
            ("pytest", [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                        "--ignore=tests/test_built_book.py"]),
            ("chapters at smoke", [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   "--nbval-lax", "chapters"]),
        ]:
            if not ok:
                break
            rc = run(cmd, log, cwd=src, env={**env, "BN_PROFILE": "smoke"})
            steps.append({"step": name, "exit": rc})
            ok = rc == 0
        freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True)
    got = {l.split("==")[0].lower(): l.split("==")[1] for l in freeze.stdout.splitlines() if "==" in l}
    record = {"asked": versions, "installed": {k: got.get(k) for k in versions},
              "passed": ok, "steps": steps, "minutes": round((time.time() - t0) / 60, 1),
              "date": dt.date.today().isoformat(), "python": sys.version.split()[0],
              "log": str(log_path.relative_to(REPO))}
    (REPO / "results" / "check_versions.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
