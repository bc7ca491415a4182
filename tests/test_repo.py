"""Promises the repository makes to a newcomer: set-up commands, docs, lint, types."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md must open with a code block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    run, test = commands
    assert "cockpit demo" in run and "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"COCKPIT_{n.upper()}" for n in Settings.model_fields if f"COCKPIT_{n.upper()}" not in doc
    ]
    assert not missing


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff_lint_and_format_are_clean() -> None:
    ruff = _tool("ruff")
    lint = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict_on_cockpit() -> None:
    mypy = _tool("mypy")
    out = subprocess.run([mypy, "cockpit"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
