"""CoT over TCP: a real `cockpit serve` with its CoT port, loaded by ../shared/tools/cot_load.py.

The bar (DESIGN.md): ≥ 5,000 events/s from 100 TAK senders, fanned out to 10 TAK
listeners, p99 ≤ 50 ms, no loss. cot_load connects senders and listeners to the same
port and sends no `<auth>`, so the server trusts 127.0.0.1/32 here
(`COCKPIT_COT_TRUSTED_NETWORKS`), as it would a co-located TAK server. Reports are
relayed once on the bus, as browsers are pushed (the product's default);
`--relay-after committed` waits for the incident log's commit first.

    python -m bench.cot                      # the target: 100 senders x 50/s, 10 listeners, 20 s
    python -m bench.cot -n 10 -r 10 -d 5     # a quick look

Prints one JSON object: cot_load's figures (`load`), the server's /healthz counters for
the feed (`cot`, `feed`), and the commit measured. Exits 0 with `{"skipped": …}` when the
tool is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, git_commit

TOOL = (
    Path(os.environ.get("COCKPIT_SHARED_TOOLS", ROOT.parent / "shared" / "tools")) / "cot_load.py"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthz(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/healthz", timeout=30).json())


def start_server(
    data_dir: Path, log: Path, relay_after: str = "published"
) -> tuple[subprocess.Popen[bytes], str, int]:
    """`cockpit serve` with the CoT port on a free port; (process, http url, CoT port)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(
        COCKPIT_INCIDENT="bench-cot",
        COCKPIT_COT_LISTEN="tcp:127.0.0.1:0",
        COCKPIT_COT_TRUSTED_NETWORKS='["127.0.0.1/32"]',
        COCKPIT_COT_RELAY_AFTER=relay_after,
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    port = _free_port()
    cmd = [sys.executable, "-m", "cockpit.cli", "serve", "--data-dir", str(data_dir)]
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            listening = _healthz(url)["cot"]["listening"]
            return proc, url, int(listening.rsplit(":", 1)[1])
        except (httpx.HTTPError, KeyError, TypeError):
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not answer /healthz in 60 s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--senders", type=int, default=100)
    p.add_argument("-r", "--rate", type=float, default=50.0, help="events/s per sender")
    p.add_argument("-m", "--listeners", type=int, default=10)
    p.add_argument("-d", "--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument(
        "--relay-after",
        choices=("published", "committed"),
        default="published",
        help="COCKPIT_COT_RELAY_AFTER: relay once on the bus (default) or once committed",
    )
    a = p.parse_args(argv)
    if not TOOL.is_file():
        print(json.dumps({"skipped": f"{TOOL} not found"}))
        return 0
    load_before = os.getloadavg()  # a shared machine: how busy it was matters
    tmp = Path(tempfile.mkdtemp(prefix="bench-cot-"))
    log = tmp / "server.log"
    proc, url, port = start_server(tmp / "data", log, a.relay_after)
    try:
        run = subprocess.run(
            [
                sys.executable,
                str(TOOL),
                "--port",
                str(port),
                "-n",
                str(a.senders),
                "-r",
                str(a.rate),
                "-m",
                str(a.listeners),
                "-d",
                str(a.duration),
                "--warmup",
                str(a.warmup),
                "--ramp",
                "1",
                "--pid",
                str(proc.pid),
            ],
            capture_output=True,
            text=True,
            timeout=a.duration + a.warmup + 120,
        )
        health: dict[str, Any] = {}
        for _ in range(6):  # a server still working off a backlog answers late
            try:
                health = _healthz(url)
                break
            except httpx.HTTPError:
                time.sleep(5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    if run.returncode != 0:
        print(json.dumps({"error": run.stderr[-2000:]}))
        return 1
    out = {
        "bench": "cot",
        "commit": git_commit(),
        "relay_after": a.relay_after,
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "target": {"events_per_s": 5000, "senders": 100, "listeners": 10, "p99_ms": 50},
        "load": json.loads(run.stdout),
        "cot": health.get("cot"),
        "feed": health.get("feeds", {}).get("cot"),
        "pipeline_seq": health.get("pipeline", {}).get("seq"),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
