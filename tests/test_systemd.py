"""The shipped systemd unit passes `systemd-analyze verify` and stays hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "dialerd.service"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def test_unit_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this interpreter for the check.
    text = UNIT.read_text().replace("/usr/bin/dialerd", sys.executable)
    unit = tmp_path / "dialerd.service"
    unit.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in proc.stderr.splitlines() if "dialerd.service" in line]
    assert problems == []


def test_security_exposure_is_low(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for dialerd.service: ([\d.]+)", proc.stdout)
    assert match, proc.stdout[-500:] + proc.stderr[-500:]
    assert float(match.group(1)) <= 2.0
