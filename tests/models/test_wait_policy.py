"""llama.cpp's threads wait passively unless the user chose otherwise (see models/__init__)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import models, llama_cpp, os; print(os.environ.get('OMP_WAIT_POLICY'))"


def run_probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_passive_by_default_before_llama_cpp_loads() -> None:
    assert run_probe() == "PASSIVE"


def test_a_policy_the_user_set_is_kept() -> None:
    assert run_probe(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
