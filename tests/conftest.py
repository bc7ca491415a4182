"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
import redis

REDIS_URL = os.environ.get("COCKPIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")


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
