"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

REDIS_URL = os.environ.get("COCKPIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Debian's Chromium, never a downloaded one; the page tests save screenshots here.
CHROMIUM = os.environ.get("COCKPIT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis; tests that need one skip (with the reason) when none answers."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module's pages (the modules skip where it is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
