"""``tracker --help`` stays a cold start: no heavy library is imported to build the parser.

The time itself is a benchmark (bench/bench_cli.py, target under 0.5 s), never a test; this
test checks the cause instead: a command module that imports boto3, pandas, SQLAlchemy,
moto or FastAPI at its top level fails here, naming the module.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.bench_cli import HEAVY, PROBE
from tests.conftest import REPO


def test_help_imports_no_heavy_library() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=REPO, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [], f"imported by tracker --help; defer them: {HEAVY}"
