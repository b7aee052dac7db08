"""Loading a benchmark script of ``bench/`` as a module, for the tests of its arithmetic
and of its reduced runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from support import ROOT

BENCH = Path(ROOT) / "bench"


def load_bench(name: str) -> ModuleType:
    """``bench/NAME.py`` as the module ``bench_NAME``."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the benches import their shared helpers as `common`
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
