# `make run` and `make test` each do all the set-up they need (idempotent).
VENV ?= .venv
BIN := $(VENV)/bin
STATE_DIR ?= state
export VENV

.PHONY: setup run test lint typecheck unit fuzz check-rules rule-tests bench docs clean

setup:
	@scripts/setup.sh

# The daemon with the shipped rules: eBPF as root, the /proc fallback otherwise.
# Stop it with Ctrl-C; alerts, incidents and the API token live in $(STATE_DIR).
run: setup check-rules
	$(BIN)/linnix run --rules rules/ --state-dir $(STATE_DIR)

test: setup lint typecheck check-rules rule-tests unit fuzz

lint:
	$(BIN)/ruff check linnix tests bench

typecheck:
	$(BIN)/mypy

check-rules:
	$(BIN)/linnix check rules/

rule-tests:
	$(BIN)/linnix test rules/

unit:
	$(BIN)/pytest

# Arbitrary requests against the API (paths, queries, headers, bodies): never a 500.
# `unit` runs 100 of them; this runs more, still bounded (a few seconds per hundred).
fuzz:
	LINNIX_FUZZ_EXAMPLES=500 $(BIN)/pytest -q -p no:cacheprovider --timeout=600 \
		tests/api/test_app_fuzz.py

bench: setup
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/live.py
	$(BIN)/python bench/api.py

docs: setup
	$(BIN)/python -m linnix.tools.reference --write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
