# One command per chore. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.cargo/bin:$(PATH)

VENV := .venv
PY := $(VENV)/bin/python
CRATE := geo_engine
STACK := scripts/stack.sh

.PHONY: help up down status test test-rust test-python lint format build bench fuzz migrate screenshot

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

up: ## Install what is missing, build, and run the whole stack locally (API :8000, ETL :8001, worker, Martin :3000)
	@$(STACK) up

down: ## Stop what `make up` started
	@$(STACK) down

status: ## Show what is running
	@$(STACK) status

migrate: ## Apply the Alembic migrations to the database in .env
	@$(STACK) migrate

build: ## Install dependencies and build geo_engine (release) into .venv
	@$(STACK) provision

test: ## Provision, then run every test: cargo tests, lint, pytest against real PostGIS and Redis
	@$(STACK) test-env
	@$(MAKE) --no-print-directory test-rust lint test-python

test-rust:
	cd $(CRATE) && cargo test --release --quiet

test-python:
	$(PY) -m pytest -q

lint: ## ruff, mypy --strict, cargo fmt --check, cargo clippy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd $(CRATE) && cargo fmt --check
	cd $(CRATE) && cargo clippy --release --tests --quiet -- -D warnings
	# The library alone too: its no-panic lints (lib.rs) apply outside cfg(test) only.
	cd $(CRATE) && cargo clippy --release --lib --quiet -- -D warnings

format: ## Format Python and Rust code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	cd $(CRATE) && cargo fmt

bench: ## Generate the benchmark files and compare geo_engine and the pipeline with pyogrio, pyproj and ogr2ogr
	@$(STACK) test-env
	$(PY) -m benchmarks.run

screenshot: ## Regenerate docs/map.png: the map page's browser test, in headless Chromium
	@$(STACK) test-env
	MAP_SCREENSHOT=$(CURDIR)/docs/map.png $(PY) -m pytest -q tests/browser -k sample_source

fuzz: ## A short cargo-fuzz run of every parser (needs a nightly toolchain)
	cd $(CRATE) && ./fuzz/run.sh
