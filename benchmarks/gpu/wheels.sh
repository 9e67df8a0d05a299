#!/usr/bin/env bash
# Download, here, the wheels benchmarks/gpu/check.sh installs on a device machine that reaches no
# package index: papermill and ipykernel with what they need, at constraints.txt's versions where
# it pins them, built for that machine's Python (default 3.12) on x86-64 Linux. The book's own
# dependencies (torch, torchvision, numpy, matplotlib, pillow, tqdm) are not fetched: check.sh
# reuses the machine's. Then carry DIR (default .whl/, ignored by git) and pass --wheels DIR.
#
#   benchmarks/gpu/wheels.sh [DIR] [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR="${1:-.whl}" PYV="${2:-3.12}"
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
mkdir -p "$DIR"
# the pins, less the packages the device machine brings (and the book's own dependencies)
CONS="$(mktemp)"; trap 'rm -f "$CONS"' EXIT
grep -viE '^(torch|torchvision|triton|nvidia-|cuda-|numpy|matplotlib|pillow|tqdm|setuptools|pip)[=-]' \
    constraints.txt > "$CONS"
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do PLATFORMS+=(--platform "$p"); done
"$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version "$PYV" \
    --implementation cp "${PLATFORMS[@]}" -c "$CONS" -d "$DIR" papermill ipykernel
echo "$(ls "$DIR" | wc -l) wheels, $(du -sh "$DIR" | cut -f1) in $DIR"
