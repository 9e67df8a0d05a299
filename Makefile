# The book's two commands:  make book  (quick profile, HTML in _build/html)  and  make test.
# Both create .venv on first use and install the exact versions pinned in constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NBVAL_TIMEOUT ?= 900

# Datasets: $BN_DATA_DIR if set, else the offline caches in ../shared/data when they exist
# (else bn_utils downloads them). Absolute, because notebooks run inside chapters/.
ifneq ($(BN_DATA_DIR),)
export BN_DATA_DIR := $(abspath $(BN_DATA_DIR))
else ifneq ($(wildcard ../shared/data/mnist.npz),)
export BN_DATA_DIR := $(abspath ../shared/data)
endif
# No MPLBACKEND here: a notebook kernel must keep its inline backend, or the book has no figures.
export BN_PROGRESS ?= 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test install pytest nbval book-smoke book-check browser reader-install check-versions \
	clean clean-notebooks benchmarks store-checked-outputs set-repository code-digest gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[book]"
	@touch $@

# Jupyter Book's execution cache knows a notebook's cells, not the bn_utils code they call:
# when that code changes, forget the cached outputs (and Sphinx's record of what it read) in $(1).
# The digest: every .py file of the package at any depth, each with its path (so a rename or a
# new file counts too), in a fixed order. `make code-digest` prints it (tests/test_makefile.py).
CODE_DIGEST := find bn_utils -name '*.py' -not -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z \
	| xargs -0 sha256sum | sha256sum | cut -c1-16
# The book's Sphinx extension (tools/book_html.py) and its styles and scripts (_static/) shape the
# pages, not what runs: when one changes, only Sphinx's record goes (the pages are read and written
# again from the cached outputs; Sphinx copies _static/ only when it writes a page).
define forget-stale-outputs
	@digest=$$($(CODE_DIGEST)); \
	if [ "$$(cat $(1)/.bn_utils_digest 2>/dev/null)" != "$$digest" ]; then \
		rm -rf $(1)/.jupyter_cache $(1)/.doctrees; mkdir -p $(1); echo $$digest > $(1)/.bn_utils_digest; fi; \
	ext=$$(cat tools/book_html.py _static/* | sha256sum | cut -c1-16); \
	if [ "$$(cat $(1)/.book_html_digest 2>/dev/null)" != "$$ext" ]; then \
		rm -rf $(1)/.doctrees; mkdir -p $(1); echo $$ext > $(1)/.book_html_digest; fi
endef

code-digest:
	@$(CODE_DIGEST)

# Executes every chapter at the quick profile (cached: unchanged chapters are not re-run).
book: $(STAMP)
	$(call forget-stale-outputs,_build)
	BN_PROFILE=quick $(BIN)/jupyter-book build . -W --keep-going
	@echo "The book: $(CURDIR)/_build/html/index.html"

# pytest and nbval side by side (each mostly one busy thread; the machines here have 2 cores),
# then the smoke build, which reads the chapters nbval just executed instead of running them again.
test: $(STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target pytest nbval
	@$(MAKE) --no-print-directory book-smoke book-check

# Unit tests, the wheel's contents and a reader's install (wheel in a fresh venv, one chapter run
# outside the checkout). The built-book checks need the smoke build: they run in book-check.
pytest: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/test_built_book.py

# Every chapter runs at the smoke profile; cells marked NBVAL_CHECK_OUTPUT must print what is stored.
# Each chapter that passes goes into the smoke build's execution cache (tools/nbval_cache.py).
# One intra-op thread: nbval runs beside pytest, and the smoke tensors are small.
SMOKE_CACHE := _build/smoke/_build/.jupyter_cache
nbval: $(STAMP)
	$(call forget-stale-outputs,_build/smoke/_build)
	BN_PROFILE=smoke OMP_NUM_THREADS=1 BN_NBVAL_CACHE=$(SMOKE_CACHE) $(BIN)/python -m pytest \
		-p no:cacheprovider -p tools.nbval_cache --nbval-lax --nbval-cell-timeout=$(NBVAL_TIMEOUT) chapters

# A broken toc, reference, equation or chapter fails here (warnings are errors). Its own build
# folder, so the smoke outputs never end up in the real book's execution cache.
book-smoke: $(STAMP)
	$(call forget-stale-outputs,_build/smoke/_build)
	BN_PROFILE=smoke $(BIN)/jupyter-book build . -W --keep-going --path-output _build/smoke

# The smoke build as a reader meets it: every figure an image, maths typeset offline, links that
# resolve, the Colab button; in headless Chromium (installed by `make browser` where apt can).
book-check: $(STAMP) browser
	BN_BOOK_HTML=_build/smoke/_build/html $(BIN)/python -m pytest -p no:cacheprovider tests/test_built_book.py

# Debian's chromium for the browser test, when it is missing and apt-get can install it (as root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "installing chromium with apt-get (browser test of the book)"; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is not installed and apt-get cannot install it: the browser test will be skipped"; }

# Another torch, as Colab has: a throw-away venv without constraints.txt, at the lowest versions
# pyproject.toml claims, then pytest and every chapter at smoke.
check-versions:
	$(PYTHON) tools/check_versions.py

# After changing repository.url in _config.yml: rewrite every chapter's setup cell and the README.
set-repository: $(STAMP)
	$(BIN)/python tools/set_repository.py

# Every benchmark script, one folder deep; benchmarks/gpu/ is the device check (gpu-check below).
benchmarks: $(STAMP)
	@for b in $(filter-out benchmarks/gpu/%,$(sort $(wildcard benchmarks/*.py benchmarks/*/*.py))); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The prepared device check (README's GPU section). No $(STAMP): the script makes its own
# environment (a GPU machine's torch is reused, never reinstalled). E.g. GPU_CHECK_ARGS="--device cpu".
GPU_CHECK_ARGS ?= --device cuda
gpu-check:
	bash benchmarks/gpu/check.sh $(GPU_CHECK_ARGS)

clean-notebooks: $(STAMP)
	$(BIN)/python tools/clean_notebooks.py chapters/*.ipynb

clean:
	rm -rf _build runs

# After changing a cell marked NBVAL_CHECK_OUTPUT: execute the chapters (smoke) and store only
# those cells' outputs, so that nbval has something to compare with.
store-checked-outputs: $(STAMP)
	cd chapters && for nb in [0-9][0-9]_*.ipynb; do \
		BN_PROFILE=smoke ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace $$nb || exit 1; done
	$(BIN)/python tools/clean_notebooks.py chapters/*.ipynb
