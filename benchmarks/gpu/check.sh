#!/usr/bin/env bash
# One prepared check of the book on a device, within a time budget (8 minutes on a GPU):
#   1. an environment: $PYTHON, else .venv if it runs the book, else a venv made from python3 that
#      reuses python3's packages (its torch when it imports at a compatible version, never
#      reinstalled) and installs the rest with pip -c constraints.txt -e . papermill ipykernel
#      (--wheels DIR: from those wheels only, no index; benchmarks/gpu/wheels.sh prepares them);
#   2. every chapter (or --chapters) at the smoke profile on --device, through python -m bn_utils.book.run,
#      each executed notebook under OUT/notebooks and its records under OUT/results;
#   3. benchmarks/gpu/slice.py: a timed slice of each full profile of chapters 05-08 (images/s,
#      peak memory, the chapter's hours extrapolated from its training steps); on cpu at 1 step;
#   4. on cuda, chapter 04 at its full profile if the time left allows (stopped at the budget);
#   5. OUT/gpu_check.json: date, device, torch, each chapter's pass/fail and seconds, the slices.
# OUT is --out, else $OUT, else a new temporary folder. Writing to $OUT (the device machine's
# folder, which returns 8 files at most) packs the notebooks and records into two .tar.gz files.
#
#   benchmarks/gpu/check.sh [--device cuda|cpu] [--out DIR] [--chapters 01,02,...] [--budget S]
#                           [--wheels DIR] [--data DIR] [--slice-chapters 05,06,07,08]
#                           [--slice-profile full] [--slice-steps N] [--pack|--no-pack]
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
T0=$(date +%s)

DEVICE=cuda OUTDIR="" CHAPTERS="" BUDGET=480 WHEELS="" DATA="" PACK=""
SLICE_CHAPTERS="05,06,07,08" SLICE_PROFILE=full SLICE_STEPS="" SLICE_WARMUP=""
die() { echo "error: $*" >&2; exit 2; }
folder() { (cd "$2" 2>/dev/null && pwd) || die "$1 $2: not a folder"; }   # absolute, from here
while [ $# -gt 0 ]; do
    case "$1" in
        --pack|--no-pack|-h|--help) ;;
        -*) [ $# -ge 2 ] || die "$1 needs a value" ;;
    esac
    case "$1" in
        --device) DEVICE="${2:-}"; shift 2 ;;
        --out) OUTDIR="${2:-}"; shift 2 ;;
        --chapters) CHAPTERS="${2:-}"; shift 2 ;;
        --budget) BUDGET="${2:-}"; shift 2 ;;
        --wheels) WHEELS="${2:-}"; shift 2 ;;
        --data) DATA="${2:-}"; shift 2 ;;
        --slice-chapters) SLICE_CHAPTERS="${2-}"; shift 2 ;;
        --slice-profile) SLICE_PROFILE="${2:-}"; shift 2 ;;
        --slice-steps) SLICE_STEPS="${2:-}"; shift 2 ;;
        --slice-warmup) SLICE_WARMUP="${2:-}"; shift 2 ;;
        --pack) PACK=1; shift ;;
        --no-pack) PACK=0; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
case "$DEVICE" in cuda|cuda:[0-9]*|cpu) ;; *) die "--device $DEVICE: cuda, cuda:N or cpu" ;; esac
[[ "$BUDGET" =~ ^[0-9]+$ ]] && [ "$BUDGET" -gt 0 ] || die "--budget $BUDGET: a positive number of seconds"
[ -z "$WHEELS" ] || WHEELS="$(folder --wheels "$WHEELS")" || exit 2
[ -z "$DATA" ] || DATA="$(folder --data "$DATA")" || exit 2
if [ -z "$DATA" ] && [ -n "${BN_DATA_DIR:-}" ]; then DATA="$(folder BN_DATA_DIR "$BN_DATA_DIR")" || exit 2; fi
if [ -z "$OUTDIR" ]; then OUTDIR="${OUT:-$(mktemp -d -t gpu_check.XXXXXX)}"; fi
mkdir -p "$OUTDIR" 2>/dev/null || die "--out $OUTDIR: cannot be made"
OUTDIR="$(folder --out "$OUTDIR")" || exit 2
cd "$REPO"
# the chapters (notebook stems, as python -m bn_utils.book.run --list gives them)
ALL="$(cd chapters && ls [0-9][0-9]_*.ipynb | sed 's/\.ipynb$//')"
if [ -n "$CHAPTERS" ]; then
    LIST=""; for c in ${CHAPTERS//,/ }; do
        m="$(echo "$ALL" | grep -E "^$c(_|$)" | head -1)"; [ -n "$m" ] || die "--chapters: unknown chapter $c"
        LIST="$LIST $m"
    done
else
    LIST="$(echo "$ALL" | grep -E '^(0[1-9]|10)_')"
fi
if [ -z "$PACK" ]; then
    PACK=0; [ -n "${OUT:-}" ] && [ "$OUTDIR" = "$(cd "$OUT" 2>/dev/null && pwd)" ] && PACK=1
fi
# the datasets: --data, else $BN_DATA_DIR, else data/ here or ../shared/data when they hold mnist
for d in "$REPO/data" "$REPO/../shared/data"; do
    [ -z "$DATA" ] && [ -f "$d/mnist.npz" ] && DATA="$(folder --data "$d")"
done
[ -z "$DATA" ] || export BN_DATA_DIR="$DATA"
export BN_PROGRESS=0 PYTHONUNBUFFERED=1 PYDEVD_DISABLE_FILE_VALIDATION=1
WORK="$(mktemp -d -t gpu_check_work.XXXXXX)"; mkdir -p "$OUTDIR/notebooks" "$OUTDIR/results"
trap 'rm -rf "$WORK"' EXIT
LOG="$OUTDIR/gpu_check.log"; : > "$LOG"
say() { echo "[gpu_check $(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG" >&2; }
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
say "device $DEVICE, out $OUTDIR, budget ${BUDGET}s, data ${BN_DATA_DIR:-none}"

# --- 1. the environment -----------------------------------------------------------------------
torch_ok() {  # does python $1 import torch and torchvision at pyproject.toml's lower bounds (and $2)?
    "$1" - ${2:-} <<'EOF' 2>/dev/null
import importlib, re, sys
import torch, torchvision
for name in sys.argv[1:]:
    importlib.import_module(name)
v = lambda s: tuple(int(x) for x in re.findall(r"\d+", s.split("+")[0])[:2])
sys.exit(0 if v(torch.__version__) >= (2, 5) and v(torchvision.__version__) >= (0, 20) else 1)
EOF
}
runs_book() { [ -x "$1" ] && torch_ok "$1" "bn_utils papermill ipykernel"; }

INSTALL="existing"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"; runs_book "$PY" || die "PYTHON=$PY does not import bn_utils, papermill, ipykernel and torch"
elif runs_book "$REPO/.venv/bin/python"; then
    PY="$REPO/.venv/bin/python"
else
    BASE="$(command -v python3)" || die "no python3"
    VENV="${GPU_VENV:-${TMPDIR:-/tmp}/bn-gpu-venv}"
    say "installing into $VENV (base $BASE)"
    PIPCMD=("$VENV/bin/python" -m pip)
    if ! "$BASE" -m venv "$VENV" >> "$LOG" 2>&1; then   # no ensurepip there: the base's pip
        "$BASE" -m venv --without-pip "$VENV" || die "python3 -m venv $VENV failed"
        PIPCMD=("$BASE" -m pip --python "$VENV/bin/python")
    fi
    CONS="$WORK/constraints.txt"
    if torch_ok "$BASE"; then
        # reuse every package of the base python (its torch included) through a .pth file, and
        # constrain only what it lacks: pip then sees torch installed and never reinstalls it
        INSTALL="base packages reused ($("$BASE" -c 'import torch; print("torch", torch.__version__)'))"
        "$BASE" -c 'import site, sys; print("\n".join(p for p in site.getsitepackages() + [site.getusersitepackages()] if p))' \
            > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/bn_base.pth"
        "$BASE" -m pip list --format=freeze 2>/dev/null | sed 's/[ =@].*//' | tr 'A-Z_.' 'a-z--' \
            > "$WORK/have.txt"
        while IFS= read -r line; do
            name="$(echo "${line%%==*}" | tr 'A-Z_.' 'a-z--')"
            case "$line" in \#*|"") continue ;; esac
            grep -qx -- "$name" "$WORK/have.txt" || echo "$line"
        done < constraints.txt > "$CONS"
    else
        INSTALL="constraints.txt (torch installed from it)"
        cp constraints.txt "$CONS"
    fi
    PIP=(install -q --disable-pip-version-check -c "$CONS")
    [ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS" --no-build-isolation)
    "${PIPCMD[@]}" "${PIP[@]}" -e "$REPO" papermill ipykernel 2>&1 | tee -a "$LOG" \
        || die "pip install failed (see $LOG)"
    PY="$VENV/bin/python"
    runs_book "$PY" || die "$PY does not run the book after the install (see $LOG)"
fi
say "python $PY ($INSTALL)"
if [[ "$DEVICE" == cuda* ]]; then
    "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
        || die "--device $DEVICE: torch sees no CUDA device here"
fi

# --- 2. every chapter at smoke ----------------------------------------------------------------
run_chapter() {  # chapter profile timeout-seconds -> one JSON line in $WORK/chapters.jsonl
    local ch="$1" profile="$2" limit="$3" start end status err
    start=$(date +%s.%N)
    timeout --signal=TERM --kill-after=20 "$limit" "$PY" -m bn_utils.book.run "$ch" --profile "$profile" \
        --device "$DEVICE" --out "$OUTDIR/notebooks" --results "$OUTDIR/results" \
        > "$WORK/$ch.$profile.out" 2> "$WORK/$ch.$profile.err"
    status=$?
    end=$(date +%s.%N)
    cat "$WORK/$ch.$profile.out" "$WORK/$ch.$profile.err" >> "$LOG"
    err="$(grep -m1 '^error: ' "$WORK/$ch.$profile.err" || true)"
    [ "$status" = 124 ] && err="stopped at the time budget (${limit}s)"
    "$PY" - "$ch" "$profile" "$status" "$start" "$end" "$err" >> "$WORK/chapters.jsonl" <<'EOF'
import json, sys
ch, profile, status, start, end, err = sys.argv[1:]
print(json.dumps({"chapter": ch, "profile": profile, "ok": status == "0", "exit_status": int(status),
                  "seconds": round(float(end) - float(start), 1), "error": err or None}))
EOF
    say "$ch $profile: exit $status in $(awk "BEGIN { printf \"%.0f\", $end - $start }")s ${err:+($err)}"
}
for ch in $LIST; do
    limit=$(left); [ "$limit" -gt 30 ] || limit=30
    run_chapter "$ch" smoke "$limit"
done

# --- 3. a timed slice of each full profile of chapters 05-08 ----------------------------------
if [ -n "$SLICE_CHAPTERS" ]; then
    ARGS=(--device "$DEVICE" --chapters "$SLICE_CHAPTERS" --profile "$SLICE_PROFILE" --json "$WORK/slices.json")
    if [[ "$DEVICE" == cpu ]]; then ARGS+=(--steps "${SLICE_STEPS:-1}" --warmup "${SLICE_WARMUP:-0}")
    else ARGS+=(--steps "${SLICE_STEPS:-200}" --warmup "${SLICE_WARMUP:-20}"); fi
    say "slices: ${ARGS[*]}"
    limit=$(left); [ "$limit" -gt 60 ] || limit=60
    timeout --signal=TERM --kill-after=20 "$limit" "$PY" "$REPO/benchmarks/gpu/slice.py" "${ARGS[@]}" \
        2>&1 | tee -a "$LOG" >&2
    echo "${PIPESTATUS[0]}" > "$WORK/slices.status"
fi

# --- 4. chapter 04 at full on a GPU, if the time left allows ----------------------------------
FULL04="not run: cpu"
if [[ "$DEVICE" == cuda* ]]; then
    limit=$(( $(left) - 25 ))
    if [ "$limit" -ge 90 ]; then
        ch04="$(echo "$ALL" | grep -E '^04_' | head -1)"
        run_chapter "$ch04" full "$limit"
        FULL04="ran"
    else
        FULL04="not run: ${limit}s left of the budget (90 s needed to try)"
        say "chapter 04 full: $FULL04"
    fi
fi

# --- 5. the report ----------------------------------------------------------------------------
"$PY" - "$OUTDIR" "$WORK" "$DEVICE" "$BUDGET" "$T0" "$INSTALL" "$FULL04" "$PY" <<'EOF'
import datetime, json, os, platform, subprocess, sys, time
from pathlib import Path
import torch
out, work, device, budget, t0, install, full04, py = sys.argv[1:]
work = Path(work)
rows = [json.loads(l) for l in (work / "chapters.jsonl").read_text().splitlines()] \
    if (work / "chapters.jsonl").exists() else []
cuda = device.startswith("cuda") and torch.cuda.is_available()
try:
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True, timeout=10).stdout.strip() or "unknown"
except (OSError, subprocess.SubprocessError):
    commit = "unknown"
slices = json.loads((work / "slices.json").read_text()) if (work / "slices.json").exists() else None
status = (work / "slices.status").read_text().strip() if (work / "slices.status").exists() else None
report = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "device": device,
    "device_name": torch.cuda.get_device_name(torch.device(device)) if cuda else
                   (platform.processor() or platform.machine() or "cpu"),
    "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
    "python": platform.python_version(), "interpreter": py, "install": install, "commit": commit,
    "budget_seconds": int(budget), "seconds": round(time.time() - int(t0), 1),
    "smoke": {r["chapter"]: r for r in rows if r["profile"] == "smoke"},
    "smoke_passed": sum(r["ok"] for r in rows if r["profile"] == "smoke"),
    "smoke_failed": sum(not r["ok"] for r in rows if r["profile"] == "smoke"),
    "full_04": next((r for r in rows if r["profile"] == "full"), {"ok": None, "note": full04}),
    "slices": slices, "slices_exit_status": int(status) if status else None,
    "extrapolated_hours": {ch: s["extrapolated_hours"] for ch, s in (slices or {}).items()},
}
path = Path(out) / "gpu_check.json"
tmp = path.with_suffix(".tmp")
tmp.write_text(json.dumps(report, indent=1))
os.replace(tmp, path)
print(f"{path}: {report['smoke_passed']} chapters passed at smoke, {report['smoke_failed']} failed; "
      f"{report['seconds']:.0f} s", file=sys.stderr)
EOF
REPORT_STATUS=$?
if [ "$PACK" = 1 ]; then
    for d in notebooks results; do
        tar -C "$OUTDIR" -czf "$OUTDIR/$d.tar.gz" "$d" && rm -rf "${OUTDIR:?}/$d"
    done
fi
say "report $OUTDIR/gpu_check.json"
[ "$REPORT_STATUS" = 0 ] || exit 1
# exit 1 when a chapter failed (the report says which), 0 when all passed
! grep -q '"ok": false' "$OUTDIR/gpu_check.json"
