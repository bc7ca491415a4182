"""What every bench reports the same way: the commit measured, a process's CPU time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["ROOT", "git_commit", "proc_cpu_s"]

ROOT = Path(__file__).resolve().parents[1]
_PRODUCT = ("cockpit", "feeds", "assets", "layouts")  # what a figure depends on


def git_commit() -> str | None:
    """The commit measured, with `+dirty` when product files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *_PRODUCT],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return (head + ("+dirty" if dirty else "")) or None


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process pid; None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
