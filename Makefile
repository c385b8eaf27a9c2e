# Secure multi-account SageMaker deployment as code. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv templates check-templates lint test demo bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the package editable with its dev extra

templates: $(STAMP) ## Emit templates/*.yaml from the generator and lint each (any finding fails)
	$(PY) -m generator

check-templates: $(STAMP) ## Fail if templates/ differs from what the generator emits (CI)
	$(PY) -m generator --check

lint: $(STAMP) ## Lint templates/ with the cfn-lint command line
	$(VENV)/bin/cfn-lint --include-checks I -- templates/*.yaml

test: $(STAMP) ## Run the test suite (unit, lint, end-to-end on a local AWS emulator)
	$(PY) -m generator --check
	$(PY) -m pytest -n auto -q

demo: $(STAMP) ## The main job, offline: local AWS, publish, plan, apply, status, invoke (issue 6 fills this in)
	@echo "demo: not built yet (issue 6)"; exit 1

bench: $(STAMP) ## Benchmarks of rollout cost and generation (issue 9 fills this in)
	@echo "bench: not built yet (issue 9)"; exit 1

clean: ## Remove the venvs and caches (never templates/)
	rm -rf $(VENV) .venv-* .pytest_cache build *.egg-info
