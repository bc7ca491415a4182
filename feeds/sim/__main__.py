"""Run the demo incident simulator by hand.

    python -m feeds.sim --url ws://127.0.0.1:8050/ws/ingest/telemetry --token TOKEN
    python -m feeds.sim --dump-at 120        # print the messages at sim time 120 s, no network

The token may also come from the COCKPIT_SIM_TOKEN environment variable (keeps it out
of the process list). Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from feeds.sim.client import run_sim
from feeds.sim.scenario import harbour_fire

DEFAULT_URL = "ws://127.0.0.1:8050/ws/ingest/telemetry"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m feeds.sim",
        description="Demo incident simulator: 'Brand Lagerhalle Hafen', Dortmund.",
    )
    p.add_argument(
        "--url", default=DEFAULT_URL, help=f"telemetry WebSocket (default {DEFAULT_URL})"
    )
    p.add_argument("--token", default=None, help="device token (default: $COCKPIT_SIM_TOKEN)")
    p.add_argument("--speedup", type=float, default=1.0, help="sim seconds per wall second")
    p.add_argument("--rate", type=float, default=1.0, help="ticks per wall second (default 1)")
    p.add_argument("--start", type=float, default=0.0, help="begin at this sim time (s)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    p.add_argument(
        "--dump-at",
        type=float,
        default=None,
        metavar="T",
        help="print the messages at sim time T as JSON lines and exit",
    )
    return p


async def _run(args: argparse.Namespace, token: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    await run_sim(
        args.url,
        token,
        rate_hz=args.rate,
        speedup=args.speedup,
        stop=stop,
        start_s=args.start,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.dump_at is not None:
        for message in harbour_fire().messages_at(args.dump_at, datetime.now(UTC)):
            print(json.dumps(message, ensure_ascii=False))
        return 0
    token = args.token or os.environ.get("COCKPIT_SIM_TOKEN", "")
    if not token:
        print("a token is needed: --token or COCKPIT_SIM_TOKEN", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args, token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
