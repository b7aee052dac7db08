# `make run` and `make test` each do all the set-up they need (idempotent).
VENV ?= .venv
BIN := $(VENV)/bin
STATE_DIR ?= state
export VENV

.PHONY: setup setup-run install run test lint typecheck unit fuzz check-rules fmt-rules rule-tests bench docs clean

# What running needs (make run); what the tests need on top (make test).  README: Quickstart.
setup-run:
	@scripts/setup.sh run

setup:
	@scripts/setup.sh test

# linnix as a systemd service (as root): /opt/linnix, /etc/linnix, the unit; docs/service.md
install:
	@scripts/install.sh

# The daemon with the shipped rules: eBPF as root, the /proc fallback otherwise.
# Stop it with Ctrl-C; alerts, incidents and the API token live in $(STATE_DIR).
run: setup-run check-rules
	$(BIN)/linnix run --rules rules/ --state-dir $(STATE_DIR)

test: setup lint typecheck check-rules fmt-rules rule-tests unit fuzz

lint:
	$(BIN)/ruff check linnix tests bench

typecheck:
	$(BIN)/mypy

check-rules:
	$(BIN)/linnix check rules/

# The shipped rules are in the layout `linnix fmt` writes (`make run` does not wait on it).
fmt-rules:
	$(BIN)/linnix fmt --check rules/

rule-tests:
	$(BIN)/linnix test rules/

# The test suite in two passes, every test in exactly one (tests/conftest.py, --pass): first
# the tests that may share the machine, on UNIT_WORKERS processes (pytest-xdist), then alone
# those that start daemons or demos or time the kernel (marked root, ebpf, slow or serial,
# or in a module that takes live_support's require_root, require_ebpf or Daemon).  Both
# always run; the target fails if either did.
UNIT_WORKERS ?= auto
unit:
	status=0; \
	$(BIN)/pytest -n $(UNIT_WORKERS) --pass parallel || status=$$?; \
	$(BIN)/pytest --pass serial || status=$$?; \
	exit $$status

# The fuzzing targets with more input than the unit run: arbitrary bytes and lines for the
# trace reader (nothing but TraceError, nothing at all with --skip-invalid, never a hang) and
# arbitrary requests for the API (never a 500).  Deterministic, so that a run never fails on
# luck; HYPOTHESIS_PROFILE=thorough explores fresh random input by hand.  At most FUZZ_SECONDS.
FUZZ_SECONDS ?= 600
fuzz:
	HYPOTHESIS_PROFILE=fuzz LINNIX_FUZZ_EXAMPLES=500 timeout $(FUZZ_SECONDS) \
		$(BIN)/pytest -q -p no:cacheprovider tests/engine/test_trace_fuzz.py \
		tests/api/test_app_fuzz.py

bench: setup
	$(BIN)/python bench/compile.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/gap.py
	$(BIN)/python bench/subtree.py
	$(BIN)/python bench/live.py
	$(BIN)/python bench/api.py

docs: setup-run
	$(BIN)/python -m linnix.tools.reference --write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
