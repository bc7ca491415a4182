"""The `cockpit` command: demo, serve, replay, user add, token add, export, import,
purge-personal, debrief."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import getpass
import logging
import os
import secrets
import socket
import sys
import tempfile
import time
import webbrowser
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import uvicorn
from pydantic import SecretStr

from cockpit.audit import AUDIT_FILE, AuditError, AuditLog
from cockpit.auth import ROLES, AuthError, AuthStore
from cockpit.debrief import build_debrief, debrief_filename
from cockpit.exercise import ExerciseOptions
from cockpit.recorder import (
    RecorderError,
    export_incident,
    import_incident,
    incident_path,
    recorded_personal,
)
from cockpit.retention import purge_recording
from cockpit.server import build_services, create_app, resolve_incident
from cockpit.settings import Settings, SettingsError, load_settings

__all__ = ["main", "tune_gc"]

log = logging.getLogger("cockpit")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(
        getattr(args, "config", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None),
        **extra,
    )


def _auth(settings: Settings) -> AuthStore:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AuthStore(settings.data_dir / "auth.sqlite", session_ttl_s=settings.session_ttl_s)


async def _serve(
    settings: Settings,
    *,
    replay: Path | None = None,
    exercise: ExerciseOptions | None = None,
    on_start: Any = None,
) -> None:
    # Bind and start everything before serving, so that a taken port, an unreachable
    # Redis or a recording that isn't one end the command with one clear line.
    sock = _bind(settings)
    try:
        if exercise is not None:
            settings = exercise.settings(settings)
        async with build_services(settings, replay, exercise) as svc:
            tune_gc()
            app = create_app(settings, replay=replay, exercise=exercise, services=svc)
            config = uvicorn.Config(
                app,
                log_level="info",
                ws_max_size=settings.max_body_bytes,
                # Live streams never end by themselves: don't wait for them on shutdown.
                timeout_graceful_shutdown=3,
                access_log=False,
                # HTTPS on the socket bound above (uvicorn wraps passed sockets too).
                ssl_certfile=settings.tls_cert,
                ssl_keyfile=settings.tls_key,
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
                await asyncio.sleep(0.05)
            extra: asyncio.Task[None] | None = None
            if server.started and on_start is not None:
                extra = asyncio.create_task(on_start(sock.getsockname()[1]))
            try:
                await task
            finally:
                if extra is not None:
                    extra.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await extra
    except (OSError, redis.RedisError) as exc:
        if settings.redis_url and isinstance(exc, (redis.RedisError, ConnectionError)):
            raise SettingsError(
                f"redis_url (COCKPIT_REDIS_URL) = {settings.redis_url!r}: {exc}"
            ) from exc
        raise
    finally:
        sock.close()


def _with_demo_drones(settings: Settings) -> Settings:
    """The demo drones' MAVLink port (if free), callsigns, cameras and video analysis."""
    from feeds.sim.drones import DRONES

    update: dict[str, Any] = {
        "cameras": {o.entity: (o.camera.hfov_deg, o.camera.vfov_deg) for o in DRONES},
        "video_analysis": {o.entity: "thermal" if o.thermal else "visual" for o in DRONES},
        "mavlink_callsigns": {o.sysid: o.callsign for o in DRONES},
    }
    if settings.mavlink_listen is None:
        # Drones' MAVLink on its usual port, if nobody else (a ground station) has it.
        if _udp_free("127.0.0.1", 14550):
            update["mavlink_listen"] = "udp:127.0.0.1:14550"
        else:
            print("demo: udp:127.0.0.1:14550 is taken; MAVLink is off", file=sys.stderr)
    return settings.model_copy(update=update)


def _with_demo_lorawan(settings: Settings) -> tuple[Settings, str | None]:
    """The demo's LoRaWAN sensors, when an MQTT broker answers on 127.0.0.1:1883 (and no
    other broker is configured): their profiles, and a topic of this demo run alone."""
    from cockpit.settings import TtnProfile
    from feeds.sim.lorawan import DEMO_PROFILES

    if settings.mqtt_url is not None:
        return settings, None
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=0.5):
            pass
    except OSError:
        print("demo: no MQTT broker on 127.0.0.1:1883; LoRaWAN sensors are off", file=sys.stderr)
        return settings, None
    app = f"cockpit-demo-{secrets.token_hex(3)}@ttn"
    update: dict[str, Any] = {
        "mqtt_url": "mqtt://127.0.0.1:1883",
        "ttn_topic": f"v3/{app}/devices/+/up",
        "ttn_profiles": {
            **{k: TtnProfile.model_validate(v) for k, v in DEMO_PROFILES.items()},
            **settings.ttn_profiles,
        },
    }
    return settings.model_copy(update=update), app


def _with_demo_tak(settings: Settings) -> Settings:
    """TAK clients' CoT port 8087 (if free): the demo's ATAK users walk near the fire."""
    if settings.cot_listen is not None:
        return settings
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8087))
        except OSError:
            print("demo: tcp:127.0.0.1:8087 is taken; CoT is off", file=sys.stderr)
            return settings
    return settings.model_copy(update={"cot_listen": "tcp:127.0.0.1:8087"})


def _with_demo_responders(settings: Settings) -> tuple[Settings, Any]:
    """The demo's first responders: the cockpit's A.D.Le.R. alerts go to the simulator's
    endpoint on a free loopback port with a fresh token, never to a platform configured
    for real (a demo must not alert real people). Returns the coroutine factory that runs
    them, given the cockpit's base URL and the device token."""
    from feeds.sim.responders import demo_responders, run_responders

    sim, endpoint, alert_token = demo_responders()
    # Their positions go out every 3 s: httpx's line per request would drown the demo's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    update = {"adler_alert_url": endpoint.url, "adler_alert_token": SecretStr(alert_token)}
    return settings.model_copy(update=update), functools.partial(run_responders, sim, endpoint)


def _udp_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a long-running server.

    The ingest path makes many short-lived objects; with CPython's default threshold
    (700) collections run constantly, full ones included. Everything alive after start-up
    is frozen out of collection. Measured here: +20-26 % ingest throughput.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _bind(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off on accepted connections only for sockets
    # that say they are TCP; without it every small push or ack waited ~40 ms (measured).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited on Linux
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise SettingsError(
            f"port (COCKPIT_PORT) = {settings.port} on {settings.host}: {exc.strerror}"
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args, role=getattr(args, "role", None))
    asyncio.run(_serve(settings))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from feeds.sim.client import run_sim

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="cockpit-demo-"))
    settings = load_settings(None, host=args.host, port=args.port, data_dir=data_dir, role="all")
    # The demo is the embedded default: its own incident on the in-memory bus, even where
    # COCKPIT_REDIS_URL or COCKPIT_INCIDENT is set for a real deployment.
    settings = settings.model_copy(update={"redis_url": None, "incident": None})
    if settings.tls_cert is not None:
        # Its simulators post to it over loopback in plain HTTP and would not trust the
        # certificate: refused, rather than a demo whose feeds all fail.
        raise SettingsError(
            "tls_cert (COCKPIT_TLS_CERT): the demo's simulators speak plain HTTP over "
            "loopback; unset COCKPIT_TLS_CERT and COCKPIT_TLS_KEY, or use `cockpit serve`"
        )
    if not args.no_drones:
        settings = _with_demo_drones(settings)
    settings, lorawan_app = _with_demo_lorawan(settings)
    settings = _with_demo_tak(settings)
    settings, responders = _with_demo_responders(settings)
    password = secrets.token_urlsafe(12)  # a fresh one each run: no default secret
    with _auth(settings) as auth:
        auth.add_user("einsatzleitung", "commander", password, replace=True)
        token = auth.add_device("demo-sim", ["telemetry", "video", "cap", "cot", "adler"])
    incident = resolve_incident(settings)

    async def started(port: int) -> None:
        url = f"http://{settings.host}:{port}/"
        print(  # the demo's whole point is to tell a person where to go and how to log in
            f"\nEinsatz-Cockpit demo: {url}\n"
            f"  Anmeldung / log-in: einsatzleitung / {password}\n"
            f"  incident {incident}, data in {settings.data_dir}\n",
            flush=True,
        )
        if not args.no_browser:
            webbrowser.open(url)
        # Pick the incident up 90 s after the alarm: the first wave is on its way.
        vehicles = run_sim(f"ws://{settings.host}:{port}/ws/ingest/telemetry", token, start_s=90.0)
        from feeds.sim.adler import run_adler  # a fall near the fire, a CO alarm nearby
        from feeds.sim.cap import run_cap_warnings  # a DWD-style warning, then its Update

        base = f"http://{settings.host}:{port}"
        sims = [vehicles, run_cap_warnings(base, token), run_adler(base, token)]
        sims.append(responders(base, token))  # twelve first responders, answering alerts
        if settings.mqtt_url and lorawan_app:  # LoRaWAN sensors over the local broker
            from feeds.sim.lorawan import run_lorawan

            sims.append(run_lorawan(settings.mqtt_url, app=lorawan_app, start_s=90.0))
        if settings.cot_listen:  # two ATAK users walking round the fire
            from feeds.cot_server import parse_tcp_addr
            from feeds.sim.cot import run_tak_users

            sims.append(run_tak_users(*parse_tcp_addr(settings.cot_listen), "demo-sim", token))
        if args.no_drones:
            await asyncio.gather(*sims)
            return
        from feeds.mavlink import parse_udp_addr
        from feeds.sim.drones import run_drones

        mavlink = parse_udp_addr(settings.mavlink_listen) if settings.mavlink_listen else None
        drones = run_drones(f"http://{settings.host}:{port}", token, mavlink, start_s=90.0)
        await asyncio.gather(*sims, drones)

    if args.no_ros:
        asyncio.run(_serve(settings, on_start=started))
    else:
        asyncio.run(_with_ros_robots(settings, started))
    return 0


async def _with_ros_robots(settings: Settings, on_start: Any) -> None:
    """The demo's ROS robots: each behind its own simulated rosbridge server on a free
    loopback port, as a real robot's `ws://host:9090`, the cockpit connecting out to it."""
    from cockpit.settings import RosRobot
    from feeds.sim.rosbridge import RosbridgeServer, demo_robots

    servers = [RosbridgeServer(robot, start_s=90.0) for robot in demo_robots()]
    try:
        for server in servers:
            await server.start()
        robots = {s.robot.entity: RosRobot.model_validate(s.robot.settings(s.url)) for s in servers}
        # Robots configured for real (COCKPIT_ROSBRIDGE) keep their place.
        update = {"rosbridge": {**robots, **settings.rosbridge}}
        await _serve(settings.model_copy(update=update), on_start=on_start)
    finally:
        for server in servers:
            await server.close()


def cmd_replay(args: argparse.Namespace) -> int:
    # A replay or an exercise is one process of its own, whatever COCKPIT_ROLE says.
    settings = _settings(args, role="all")
    recording = Path(args.recording)
    if not args.as_live:
        if args.start is not None or args.paused:
            raise SettingsError("--from and --paused belong to an exercise (--as-live)")
        asyncio.run(_serve(settings, replay=recording))
        return 0
    start = None
    if args.start is not None:
        start = _epoch_arg(args.start, "--from")
    # Never the configured incident: an exercise must not write into a real one's log.
    exercise = ExerciseOptions.of(recording, start=start, paused=args.paused)
    print(f"exercise {exercise.incident} from {recording}", file=sys.stderr)
    asyncio.run(_serve(settings, exercise=exercise))
    return 0


def _epoch_arg(value: str, flag: str) -> float:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SettingsError(f"{flag} {value!r}: not an ISO 8601 time") from exc
    if at.tzinfo is None:
        raise SettingsError(f"{flag} {value!r}: give a time zone (e.g. Z)")
    return at.timestamp()


def cmd_user_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Passwort für {args.name}: ")
        if getpass.getpass("Wiederholen: ") != password:
            raise AuthError("password: the two entries differ")
    with _auth(settings) as auth:
        user = auth.add_user(args.name, args.role, password, replace=args.replace)
    print(f"user {user.name} ({user.role}) saved in {settings.data_dir}", file=sys.stderr)
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    feeds = [f.strip() for f in args.feeds.split(",") if f.strip()]
    with _auth(settings) as auth:
        token = auth.add_device(args.device, feeds)
    print(token)
    print(f"device {args.device} may post to: {', '.join(feeds)}", file=sys.stderr)
    return 0


def cmd_tlog_replay(args: argparse.Namespace) -> int:
    from feeds.tlog import replay_tlog

    if not 0.1 <= args.speed <= 100:
        raise SettingsError(f"speed = {args.speed}: must be between 0.1 and 100")
    sent = asyncio.run(replay_tlog(args.file, args.to, args.speed))
    print(f"sent {sent} MAVLink frames from {args.file} to {args.to}", file=sys.stderr)
    return 0


def cmd_tlog_import(args: argparse.Namespace) -> int:
    """The log's events, observed at the log's own times, into the incident's recording
    (the server must not be running on this data dir: one recorder per incident)."""
    from feeds.tlog import import_tlog

    settings = _settings(args)

    async def run() -> int:
        async with build_services(settings) as svc:
            assert svc.pipeline is not None
            events = import_tlog(args.file, svc.incident, args.device)
            for i in range(0, len(events), 500):
                await svc.pipeline.ingest(events[i : i + 500])
            return len(events)

    count = asyncio.run(run())
    print(f"recorded {count} events from {args.file}", file=sys.stderr)
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid:{os.getuid()}"


def cmd_export(args: argparse.Namespace) -> int:
    """The recording without personal data, unless the admin asks for it (audited)."""
    settings = _settings(args)
    src = incident_path(settings.data_dir, args.incident)
    if args.include_personal:
        ids = recorded_personal(src) if src.is_file() else []
        if ids:  # on record before the file exists
            with AuditLog(settings.data_dir / AUDIT_FILE) as audit:
                audit.record(
                    user=f"os:{_os_user()}",
                    role="cli",
                    action="export",
                    incident=args.incident,
                    records=ids,
                    detail=f"--include-personal to {args.file}",
                )
    count = export_incident(src, Path(args.file), include_personal=args.include_personal)
    what = "with" if args.include_personal else "without"
    print(
        f"exported incident {args.incident}: {count} events to {args.file} ({what} personal data)",
        file=sys.stderr,
    )
    return 0


def cmd_debrief(args: argparse.Namespace) -> int:
    """Write the debrief of a recording (one HTML file, without personal data)."""
    settings = _settings(args)
    recording = Path(args.recording)
    text = build_debrief(recording, settings, lang=args.lang, user=f"os:{_os_user()}")
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output or debrief_filename(recording.stem, args.lang, time.time()))
    part = out.with_name(out.name + ".part")  # never a half-written file under its name
    part.write_text(text, encoding="utf-8")
    os.replace(part, out)
    print(f"debrief of {recording.name} written to {out}", file=sys.stderr)
    return 0


def cmd_purge_personal(args: argparse.Namespace) -> int:
    """Purge personal data past the retention from recordings no process is recording."""
    settings = _settings(args)
    hours = settings.personal_retention_h if args.older_than_h is None else args.older_than_h
    if not 0 <= hours <= 24 * 365:
        raise SettingsError(f"--older-than-h = {hours}: must be between 0 and 8760")
    folder = settings.data_dir / "incidents"
    paths = (
        [incident_path(settings.data_dir, args.incident)]
        if args.incident
        else sorted(folder.glob("*.sqlite"))
    )
    failed = 0
    with AuditLog(settings.data_dir / AUDIT_FILE) as audit:
        for path in paths:
            try:
                ids = purge_recording(
                    path,
                    settings,
                    older_than_s=hours * 3600,
                    now=time.time(),
                    audit=audit,
                    user=f"os:{_os_user()}",
                )
            except RecorderError as exc:
                if args.incident:
                    raise
                # One recording being recorded (its server purges it) or unreadable must
                # not leave every later one unpurged.
                print(f"{path.stem}: not purged: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(f"{path.stem}: personal data of {len(ids)} detections purged", file=sys.stderr)
    return 2 if failed else 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    incident, path = import_incident(Path(args.file), settings.data_dir, force=args.force)
    print(f"imported incident {incident} to {path}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cockpit", description="Einsatz-Cockpit")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, *, net: bool = False) -> None:
        sp.add_argument("--data-dir", type=Path, help="data directory (COCKPIT_DATA_DIR)")
        sp.add_argument("--config", type=Path, help="TOML settings file")
        if net:
            sp.add_argument("--host", help="address to bind (default 127.0.0.1)")
            sp.add_argument("--port", type=int, help="port (default 8050)")

    demo = sub.add_parser("demo", help="run the demo incident with its simulator")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8050)
    demo.add_argument("--data-dir", type=Path, help="default: a new temporary directory")
    demo.add_argument("--no-browser", action="store_true", help="don't open a browser")
    demo.add_argument(
        "--no-drones", action="store_true", help="without the two drones (MAVLink + video)"
    )
    demo.add_argument(
        "--no-ros", action="store_true", help="without the two robots on rosbridge servers"
    )
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="serve the cockpit")
    common(serve, net=True)
    serve.add_argument(
        "--role",
        choices=("all", "web", "recorder", "media"),
        help="what this process does (COCKPIT_ROLE; default all: everything in one process)",
    )
    serve.set_defaults(func=cmd_serve)

    media = sub.add_parser("media", help="serve only the video (WHIP/WHEP): serve --role media")
    common(media, net=True)
    media.set_defaults(func=cmd_serve, role="media")

    replay = sub.add_parser("replay", help="serve a recorded incident for replay")
    replay.add_argument("recording", help="an incident file (.sqlite)")
    replay.add_argument(
        "--as-live",
        action="store_true",
        help="exercise mode: play the recording into a live server, times shifted to now",
    )
    replay.add_argument(
        "--from", dest="start", help="exercise: begin at this recording time (ISO 8601)"
    )
    replay.add_argument("--paused", action="store_true", help="exercise: wait for the trainer")
    common(replay, net=True)
    replay.set_defaults(func=cmd_replay)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    ua = user.add_parser("add", help="add a user")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=ROLES)
    ua.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ua.add_argument("--replace", action="store_true", help="replace an existing user")
    common(ua)
    ua.set_defaults(func=cmd_user_add)

    token = sub.add_parser("token", help="manage device tokens")
    ta = token.add_subparsers(dest="action", required=True).add_parser("add", help="issue a token")
    ta.add_argument("device")
    ta.add_argument("--feeds", required=True, help="comma-separated: telemetry,video,adler,…")
    common(ta)
    ta.set_defaults(func=cmd_token_add)

    ex = sub.add_parser(
        "export", help="copy an incident's recording to a file (personal data emptied)"
    )
    ex.add_argument("incident")
    ex.add_argument("file")
    ex.add_argument(
        "--include-personal",
        action="store_true",
        help="keep detections' personal data (written to the audit log with your OS user)",
    )
    common(ex)
    ex.set_defaults(func=cmd_export)

    pp = sub.add_parser(
        "purge-personal",
        help="purge detections' personal data past the retention (with the server stopped)",
    )
    pp.add_argument(
        "--older-than-h",
        type=float,
        help="hours since the last report or step (default: personal_retention_h)",
    )
    pp.add_argument("--incident", help="only this incident (default: every one in the data dir)")
    common(pp)
    pp.set_defaults(func=cmd_purge_personal)

    db = sub.add_parser(
        "debrief", help="write a recording's debrief: one printable HTML file, no personal data"
    )
    db.add_argument("recording", help="an incident file (.sqlite)")
    db.add_argument(
        "-o", "--output", help="the HTML file (default: nachbesprechung-…html here; - for stdout)"
    )
    db.add_argument("--lang", choices=("de", "en"), default="de", help="language (default de)")
    common(db)
    db.set_defaults(func=cmd_debrief)

    im = sub.add_parser("import", help="add a recording file to the data dir")
    im.add_argument("file")
    im.add_argument("--force", action="store_true", help="replace an incident of the same id")
    common(im)
    im.set_defaults(func=cmd_import)

    tlog = sub.add_parser("tlog", help="MAVLink telemetry logs (QGroundControl .tlog)")
    tl = tlog.add_subparsers(dest="action", required=True)
    tr = tl.add_parser("replay", help="send a .tlog to a MAVLink port with its own timing")
    tr.add_argument("file")
    tr.add_argument("--to", default="udp:127.0.0.1:14550", help="where (udp:HOST:PORT)")
    tr.add_argument("--speed", type=float, default=1.0, help="0.1 to 100 times real time")
    tr.set_defaults(func=cmd_tlog_replay)
    ti = tl.add_parser("import", help="record a .tlog's drones into this data dir's incident")
    ti.add_argument("file")
    ti.add_argument("--device", default="tlog", help="the source device named in the events")
    common(ti)
    ti.set_defaults(func=cmd_tlog_import)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (SettingsError, AuthError, RecorderError, AuditError) as exc:
        print(f"cockpit: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
