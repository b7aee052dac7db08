# `make run` and `make test` each do all the set-up they need (idempotent).
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: setup run test lint typecheck unit check-rules bench clean

setup:
	@scripts/setup.sh

run: setup
	$(BIN)/linnix check rules/
	$(BIN)/linnix explain rules/

test: setup lint typecheck check-rules unit

lint:
	$(BIN)/ruff check linnix tests bench

typecheck:
	$(BIN)/mypy

check-rules:
	$(BIN)/linnix check rules/

unit:
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/compile.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
