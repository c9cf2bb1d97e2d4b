# Set-up and the two README commands.  `make demo` trains on a built-in task, extracts and verifies
# its program; `make test` runs the test suite.  Both create .venv on first use (torch==2.13.0 first,
# CPU build, so that the project's `torch>=…` requirement never pulls a CUDA build), then install
# this project with its dev extras.  The stamp file makes repeated runs skip the install until pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dtx-installed

.PHONY: setup demo test clean errors-doc

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/dtx run sum_last2 --out runs/sum_last2 --force

# Lint and format check first (ruff, pinned in the dev extras), then the tests. pyproject's addopts
# already has -q; a second -q would hide pytest's "N passed" line.
test: setup
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/ruff format --check src tests experiments
	$(PY) -m pytest -p no:cacheprovider

# docs/errors.md: every bad-input case of tests/bad_inputs/ and the message dtx prints.
errors-doc: setup
	PYTHONPATH=src $(PY) tests/errors_doc.py docs/errors.md

clean:
	rm -rf $(VENV) build src/*.egg-info
