# Secure multi-account SageMaker deployment as code. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv lint-venv templates check-templates lint test demo local-up local-down bench bench-quick clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@echo "==> installing the project and its dependencies into $(VENV) (the first time takes a few minutes)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	set -o pipefail; $(PY) -m pip install --progress-bar off -e '.[dev]' | { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; }
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the package editable with its dev extra

templates: $(STAMP) ## Emit templates/*.yaml (lint each: any finding fails) and their diagrams docs/templates/*.md
	$(PY) -m generator

check-templates: $(STAMP) ## Fail if templates/ or docs/templates/ differ from what the generator emits (CI)
	$(PY) -m generator --check

LINT_VENV := .venv-lint
LINT_PY := $(LINT_VENV)/bin/python
LINT_STAMP := $(LINT_VENV)/.installed
# checkov pins boto3 exactly and parliament needs pkg_resources: they get a venv of their
# own, never the product's dependencies.
LINT_REQUIREMENTS := 'checkov==3.3.30' 'parliament==1.6.4' 'setuptools<81'

$(LINT_STAMP): Makefile
	test -x $(LINT_PY) || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_PY) -m pip install --quiet --upgrade pip
	$(LINT_PY) -m pip install --quiet $(LINT_REQUIREMENTS)
	touch $(LINT_STAMP)

lint-venv: $(LINT_STAMP) ## Create .venv-lint (checkov, parliament), apart from the product's dependencies

# The pure modules (no AWS calls), type-checked.
TYPED := deploy/stacksets/manifest.py deploy/stacksets/plan.py deploy/catalog/model.py deploy/catalog/plan.py deploy/common/config.py deploy/common/refs.py

lint: $(STAMP) $(LINT_STAMP) ## Lint code (ruff, mypy on the pure modules) and templates/ (cfn-lint + security rules, checkov, parliament)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --ignore-missing-imports --follow-imports=silent $(TYPED)
	$(VENV)/bin/cfn-lint --append-rules generator.rules --include-checks I --regions $$($(PY) -c 'from generator.lint import SUPPORTED_REGIONS; print(*SUPPORTED_REGIONS)') -- templates/*.yaml
	$(LINT_VENV)/bin/checkov -d templates --framework cloudformation --skip-download --quiet --compact
	PYTHONPATH=. $(LINT_PY) -m generator.policy_lint templates/*.yaml

test: $(STAMP) ## Run the test suite (unit, lint, end-to-end on a local AWS emulator)
	$(PY) -m generator --check
	$(PY) -m pytest -n auto -q

demo: templates ## The main job, offline: local AWS up, publish, plan, apply, status, cross-account invoke, down
	$(PY) -m localaws.demo

local-up: $(STAMP) ## Start the local AWS (moto on 127.0.0.1), seeded from examples/local-org.yaml; prints the env to export
	@$(PY) -m deploy local up

local-down: $(STAMP) ## Stop the local AWS that local-up started (only that process)
	@$(PY) -m deploy local down

bench: $(STAMP) ## Benchmarks: rollout API calls and time vs fleet size (ours vs a per-account loop), generation vs cfn-lint
	$(PY) -c "import matplotlib" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench

bench-quick: $(STAMP) ## Benchmarks at 10 accounts only (under a minute)
	$(PY) -m bench --sizes 10 --generation-repeat 1

clean: ## Remove the venvs and caches (never templates/)
	rm -rf $(VENV) .venv-* .pytest_cache build *.egg-info
