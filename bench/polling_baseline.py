"""The polling baseline for bench/push_latency.py: a plain Dash page with `dcc.Interval`.

A small FastAPI + Dash app of its own (not the cockpit), started by the bench as a
subprocess:

    BENCH_COCKPIT_PASSWORD=... .venv/bin/python bench/polling_baseline.py \
        --port 8061 --cockpit http://127.0.0.1:8050 --user el [--interval-ms 250]

The page is what a "classic" Dash dashboard would do: a `dcc.Interval` (250 ms) triggers
a server callback that reads the cockpit's picture over HTTP (`GET /api/v1/situation
?tracks=false`, with a session cookie from logging in once at the first poll) and returns
`{entity id: observed_at (epoch s)}` into a `dcc.Store`. A clientside callback on that
store is where the browser first "sees" a new value: the bench page script
(`window.__bench`, set up by push_latency.py) records `now - observed_at` for every entity
whose observed_at changed. The server callback is `async def` (Dash runs it on the event
loop; a sync one would block the loop during the HTTP round trip).

`GET /bench-stats` (no Dash) tells how many polls ran and how long the situation GET
took, so the bench can say where polling time goes. The password comes from the
environment, never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime
from typing import Any

import httpx
import orjson
import uvicorn
from dash import Dash, Input, Output, dcc, html
from fastapi import FastAPI
from starlette.responses import Response

# Runs in the browser on every new store value; `window.__bench` is filled in by the
# bench (from/to of the measured window); without it the function only counts.
_SEEN_JS = """
function (data) {
    const now = (performance.timeOrigin + performance.now()) / 1000;
    const B = window.__bench || (window.__bench = {from: Infinity, to: -Infinity, lat: [], all: 0});
    B.polls = (B.polls || 0) + 1;
    if (!data) return window.dash_clientside.no_update;
    const last = B.last || (B.last = {});
    let n = 0;
    for (const id in data) {
        const t = data[id];
        if (last[id] === t) continue;
        last[id] = t;
        B.all++;
        if (t < B.from || t > B.to) continue;
        B.lat.push(now - t);
        n++;
    }
    return String(B.polls) + " polls, " + String(n) + " new";
}
"""


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).timestamp()


def build(cockpit: str, user: str, password: str, interval_ms: int) -> FastAPI:
    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    stats: dict[str, Any] = {"polls": 0, "errors": 0, "get_ms": []}
    state: dict[str, httpx.AsyncClient] = {}
    lock = asyncio.Lock()

    async def client() -> httpx.AsyncClient:
        async with lock:
            c = state.get("c")
            if c is None:
                c = httpx.AsyncClient(
                    base_url=cockpit,
                    timeout=10.0,
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
                )
                r = await c.post("/api/v1/session", json={"username": user, "password": password})
                r.raise_for_status()
                state["c"] = c
            return c

    @server.get("/bench-stats", include_in_schema=False)
    async def bench_stats(reset: bool = False) -> Response:
        ms = sorted(stats["get_ms"])

        def q(p: float) -> float | None:
            return round(ms[min(len(ms) - 1, int(p * len(ms)))], 2) if ms else None

        body = {
            "polls": stats["polls"],
            "errors": stats["errors"],
            "situation_get_ms": {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "n": len(ms)},
        }
        if reset:
            stats.update(polls=0, errors=0, get_ms=[])
        return Response(orjson.dumps(body), media_type="application/json")

    app = Dash(
        __name__,
        server=server,  # type: ignore[arg-type]  # Dash 4 takes a FastAPI app
        title="polling baseline",
        update_title=None,  # type: ignore[arg-type]  # no "Updating..." title per poll
        serve_locally=True,
        assets_folder=os.path.join(os.path.dirname(os.path.abspath(__file__)), "_no_assets"),
    )
    app.layout = html.Div(
        [
            html.H1(f"Polling baseline (dcc.Interval {interval_ms} ms)"),
            dcc.Interval(id="iv", interval=interval_ms, n_intervals=0),
            dcc.Store(id="obs"),
            html.Div(id="sink"),
        ]
    )

    @app.callback(Output("obs", "data"), Input("iv", "n_intervals"))
    async def poll(_n: int) -> dict[str, float]:
        c = await client()
        t0 = time.perf_counter()
        try:
            r = await c.get("/api/v1/situation", params={"tracks": "false"})
            r.raise_for_status()
        except httpx.HTTPError:
            stats["errors"] += 1
            raise
        stats["get_ms"].append((time.perf_counter() - t0) * 1000)
        stats["polls"] += 1
        body = orjson.loads(r.content)
        out: dict[str, float] = {}
        for e in body["entities"]:
            t = _epoch(e.get("observed_at"))
            if t is not None:
                out[e["id"]] = t
        return out

    app.clientside_callback(  # type: ignore[no-untyped-call]
        _SEEN_JS, Output("sink", "children"), Input("obs", "data")
    )
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Dash dcc.Interval polling baseline")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cockpit", required=True, help="the cockpit's base URL")
    p.add_argument("--user", default="el")
    p.add_argument("--interval-ms", type=int, default=250)
    args = p.parse_args(argv)
    password = os.environ.get("BENCH_COCKPIT_PASSWORD")
    if not password:
        print("polling_baseline: set BENCH_COCKPIT_PASSWORD", file=sys.stderr)
        return 2
    server = build(args.cockpit, args.user, password, args.interval_ms)
    uvicorn.run(server, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
