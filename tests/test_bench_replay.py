"""The replay seek bench still runs (at a tiny size) and reports what the README quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_replay_seek_bench_runs_at_a_small_size(tmp_path: Path) -> None:
    out = tmp_path / "small.sqlite"
    args = ["--events", "20000", "--hours", "0.1", "--seeks", "3", "--out", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "bench.replay_seek", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["bench"] == "replay_seek"
    rec = report["recording"]
    assert 19_000 <= rec["events"] <= 21_000 and rec["snapshots"] >= 2
    assert abs(rec["hours"] - 0.1) < 0.01
    kinds = rec["events_by_kind"]
    for kind in ("position", "readings", "status", "journal", "alert", "detection", "weather"):
        assert kinds.get(kind, 0) > 0, kind
    res = report["results"]
    for key in ("seek_ms", "seek_cpu_ms", "situation_at_ms", "situation_at_cpu_ms"):
        assert set(res[key]) >= {"p50", "p95", "max"} and res[key]["max"] > 0
    assert res["parts"]["events_folded"]["max"] > 0
    drag = res["drag"]  # a drag along the timeline: seeks forward and back, each timed
    for key in ("forward_wall_ms", "forward_cpu_ms", "back_wall_ms", "back_cpu_ms"):
        assert set(drag[key]) >= {"p50", "p95", "max"} and drag[key]["max"] > 0
    assert res["rss_mb"]["peak"] >= res["rss_mb"]["after_open"] > 0
    assert set(report["targets_met"]) == {"seek_p95_ms", "memory_peak_mb"}
    assert len(report["loadavg_1m_before_after"]) == 2
    # A second run with --reuse keeps the file instead of writing it again.
    again = subprocess.run(
        [sys.executable, "-m", "bench.replay_seek", *args, "--seeks", "1", "--reuse"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    made = json.loads(again.stdout)["generation"]
    assert made["reused"] is True
    assert made["when_made"]["events_written"] == rec["events"]
