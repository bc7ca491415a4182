"""The live services of one incident, started and stopped together: the pipeline (bus,
fold, recorder, push), video (WHIP/WHEP streams, their recording and analysis) and the
feeds that listen on their own sockets (MAVLink). Composition only: each part is its own
module; this one connects them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cockpit.api.services import Services
from cockpit.auth import AuthStore
from cockpit.bus import make_bus
from cockpit.events import (
    Context,
    Event,
    Source,
    VideoSegment,
    VideoSegmentEvent,
    VideoStream,
    VideoStreamEvent,
    checked,
    new_event_id,
    utcnow,
)
from cockpit.geo import Camera, Pose
from cockpit.health import FeedHealth, FeedState
from cockpit.media.recording import SegmentInfo, SegmentRecorder
from cockpit.media.streams import MediaHub, Stream
from cockpit.pipeline import CommitTimeout, Pipeline
from cockpit.recorder import incident_folder, incident_path
from cockpit.retention import PurgeStats, purge_loop
from cockpit.rules.footprint import camera_pose
from cockpit.settings import Settings, SettingsError
from feeds.adler_out import AlertSender

if TYPE_CHECKING:  # imported where used: OpenCV and the MAVLink dialect cost every
    # `cockpit` command ~0.2 s at start, and only some deployments use them
    from cockpit.media.relay import SfuRelay
    from cockpit.media.vision import DetectionData, StreamAnalyser
    from feeds.cap_poll import CapPoller
    from feeds.cot_server import CotServer
    from feeds.mavlink import MavlinkUdp
    from feeds.rosbridge_client import RosbridgeFeed
    from feeds.ttn_mqtt import MqttSubscription

__all__ = ["live_services", "resolve_incident", "role_settings"]

log = logging.getLogger("cockpit.live")


_PURGE_FINISH_S = 30.0  # how long shutting down waits for a purge under way


def resolve_incident(settings: Settings) -> str:
    """The configured incident, else the one kept in the data dir, else a new one."""
    if settings.incident:
        return settings.incident
    marker = settings.data_dir / "incident"
    if marker.is_file():
        return marker.read_text().strip()
    incident = f"{datetime.now(UTC):%Y-%m-%d}-{secrets.token_hex(3)}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Exclusive create: processes starting together on one data dir agree on the first.
    try:
        with marker.open("x") as fh:
            fh.write(incident + "\n")
    except FileExistsError:
        for _ in range(50):  # the winner may not have written its line yet
            kept = marker.read_text().strip()
            if kept:
                return kept
            time.sleep(0.01)
        raise SettingsError(f"incident (COCKPIT_INCIDENT): {marker} is empty") from None
    return incident


def role_settings(settings: Settings) -> Settings:
    """A web or media process never records: its pipeline must not even try the lease."""
    if settings.role in ("web", "media") and settings.recorder != "off":
        return settings.model_copy(update={"recorder": "off"})
    return settings


@asynccontextmanager
async def live_services(settings: Settings, auth: AuthStore) -> AsyncIterator[Services]:
    settings = role_settings(settings)
    role = settings.role
    # Who runs what (docs/deployment.md): video in `media` (never on the UI's loop when
    # split), the listeners and the clock beside the recorder, the routes in `web`.
    video = role in ("all", "media")
    listeners = role in ("all", "recorder")
    incident = resolve_incident(settings)
    bus = make_bus(incident, settings.redis_url)
    pipeline = Pipeline(settings, bus, incident)
    await pipeline.start()
    svc = Services(
        settings=settings,
        auth=auth,
        incident=incident,
        picture=pipeline,
        pipeline=pipeline,
        log_path=incident_path(settings.data_dir, incident),
    )
    route_feeds = {
        "all": ("telemetry", "video", "adler"),
        "web": ("telemetry", "adler"),
        "media": ("video",),
        "recorder": (),
    }[role]
    for route_feed in route_feeds:  # their routes take messages from the start
        svc.health.feed(route_feed).state = "listening"
    recorder = analyser = None
    relay: SfuRelay | None = None
    if video:
        svc.media = MediaHub(ice_servers=settings.ice_servers)
        recorder = _video_recorder(settings, svc, pipeline)
        analyser = _video_analyser(settings, svc, pipeline)
        svc.media.on_change.append(_announce_video(pipeline, incident))
        if settings.video_relay_url is not None:  # many viewers: an SFU serves them
            from cockpit.media.relay import SfuRelay

            token = settings.video_relay_token
            relay = SfuRelay(
                svc.media,
                settings.video_relay_url.get_secret_value(),
                token.get_secret_value() if token else None,
            )
            svc.extra_stats["video_relay"] = relay.stats
    mavlink = (
        await _mavlink(settings, svc, pipeline) if listeners and settings.mavlink_listen else None
    )
    cap = (
        _cap(settings, svc, pipeline)
        if listeners and (settings.cap_folder or settings.cap_url)
        else None
    )
    rosbridge = _rosbridge(settings, svc, pipeline) if listeners and settings.rosbridge else None
    ttn = _ttn_mqtt(settings, svc) if listeners and settings.mqtt_url else None
    cot = (
        await _cot(settings, svc, pipeline)
        if listeners and (settings.cot_listen or settings.cot_send_to)
        else None
    )
    alerts = (
        _adler_alerts(settings, svc, pipeline) if listeners and settings.adler_alert_url else None
    )
    # Personal data past its retention leaves the picture and the log (cockpit.retention);
    # the audit log is read when due: the composition root attaches it after this yields.
    purge_stop = asyncio.Event()
    purge_stats = PurgeStats(settings.personal_retention_h)
    svc.extra_stats["personal_purge"] = purge_stats.view
    purge = asyncio.create_task(
        purge_loop(pipeline, settings, lambda: svc.audit, purge_stop, purge_stats),
        name="personal-purge",
    )
    try:
        yield svc
    finally:
        purge_stop.set()  # a purge under way finishes first (bounded: then it is cancelled)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(purge, _PURGE_FINISH_S)
        if alerts is not None:
            await alerts.aclose()
        if ttn is not None:
            await ttn.aclose()
        if rosbridge is not None:
            await rosbridge.aclose()
        if cap is not None:
            await cap.aclose()
        if mavlink is not None:
            await mavlink.aclose()
        if cot is not None:
            await cot.aclose()
        if relay is not None:
            await relay.aclose()
        if svc.media is not None:
            await svc.media.close()
        if recorder is not None:
            await recorder.aclose()  # the last segments become events before the log closes
        if analyser is not None:
            await asyncio.to_thread(analyser.close)
        await pipeline.close()
        svc.close()


def _committing(
    pipeline: Pipeline, health: FeedHealth, clock: Callable[[], float]
) -> Callable[[list[Event]], Awaitable[None]]:
    """For a listener's feed: put its events into the picture and count them on /healthz
    once committed (a commit that times out is counted as a reject, the feed goes on)."""

    async def ingest(events: list[Event]) -> None:
        try:
            await pipeline.ingest(events)
        except CommitTimeout as exc:
            health.reject(f"not committed: {exc}", clock())
            return
        health.accept(len(events), clock())

    return ingest


async def _mavlink(settings: Settings, svc: Services, pipeline: Pipeline) -> MavlinkUdp:
    """The MAVLink listener: drones' telemetry into the picture, counted on /healthz."""
    from feeds.mavlink import listen_udp

    assert settings.mavlink_listen is not None
    health = svc.health.feed("mavlink")

    ingest = _committing(pipeline, health, svc.clock)

    try:
        feed = await listen_udp(
            settings.mavlink_listen,
            ingest,
            incident=svc.incident,
            callsigns=settings.mavlink_callsigns,
        )
    except OSError as exc:
        raise SettingsError(
            f"mavlink_listen (COCKPIT_MAVLINK_LISTEN) = {settings.mavlink_listen!r}: {exc}"
        ) from exc
    svc.extra_stats["mavlink"] = feed.stats
    health.state = "listening"
    return feed


def _cap(settings: Settings, svc: Services, pipeline: Pipeline) -> CapPoller:
    """CAP warnings from the configured folder and/or URL, counted on /healthz (feed `cap`,
    one link per source)."""
    from feeds.cap import parse_many, to_event
    from feeds.cap_poll import CapPoller

    health = svc.health.feed("cap")
    order = {"down": 0, "reconnecting": 1, "connected": 2, "listening": 3}

    def on_state(source: str, state: str) -> None:
        health.links[source] = state  # type: ignore[assignment]  # the poller's states
        health.state = min(health.links.values(), key=lambda s: order.get(s, 0))

    def on_reject(reason: str) -> None:
        log.warning("CAP: %s", reason)
        health.reject("unreadable CAP file", svc.clock())

    async def deliver(device: str, docs: list[tuple[str, bytes]]) -> None:
        warnings, errors = await asyncio.to_thread(parse_many, docs)
        for origin, exc in errors:
            log.warning("CAP %s: %s", origin, exc)
            health.reject(f"invalid CAP: {exc.path}", svc.clock())
        if not warnings:
            return
        now = utcnow()
        events: list[Event] = [
            to_event(
                w,
                incident=svc.incident,
                device=device,
                received_at=now,
                max_age_s=settings.cap_max_age_s,
            )
            for w in warnings
        ]
        try:
            await pipeline.ingest(events)
        except CommitTimeout as exc:
            health.reject(f"not committed: {exc}", svc.clock())
            raise  # the poller reads these documents again next time
        health.accept(len(events), svc.clock())

    poller = CapPoller(
        folder=settings.cap_folder,
        url=settings.cap_url,
        every_s=settings.cap_poll_s,
        max_bytes=settings.max_body_bytes,
        deliver=deliver,
        on_state=on_state,
        on_reject=on_reject,
    )
    poller.start()
    return poller


def _rosbridge(settings: Settings, svc: Services, pipeline: Pipeline) -> RosbridgeFeed:
    """The robots' rosbridge links: their topics into the picture, each link's state on
    /healthz (feeds.rosbridge.links) and as a status event (link ok/lost)."""
    from feeds.rosbridge import GasTopic, Robot, RosbridgeTranslator
    from feeds.rosbridge_client import LinkState, RobotLink, RosbridgeFeed

    health = svc.health.feed("rosbridge")

    ingest = _committing(pipeline, health, svc.clock)

    def on_state(robot: str, state: LinkState) -> None:
        health.links[robot] = state
        health.state = feed.state
        health.connections = sum(1 for s in health.links.values() if s == "connected")

    def on_reject(robot: str, reason: str) -> None:
        health.reject(f"{robot}: {reason}"[:200], svc.clock())

    links = []
    for entity, cfg in settings.rosbridge.items():
        t = cfg.topics
        robot = Robot(
            entity=entity,
            url=cfg.url,
            callsign=cfg.callsign,
            origin=cfg.origin,
            throttle_ms=cfg.throttle_ms,
            fix=t.fix,
            odom=t.odom,
            battery=t.battery,
            temperature=t.temperature,
            gases={n: GasTopic(g.topic, g.type, g.field, g.unit) for n, g in t.gas.items()},
        )
        translator = RosbridgeTranslator(svc.incident, robot)
        links.append(RobotLink(translator, ingest, on_state=on_state, on_reject=on_reject))
        health.links[entity] = "reconnecting"
    feed = RosbridgeFeed(links)
    health.state = feed.state
    feed.start()
    svc.extra_stats["rosbridge"] = feed.stats
    return feed


def _ttn_mqtt(settings: Settings, svc: Services) -> MqttSubscription:
    """The Things Stack uplinks from an MQTT broker, kept subscribed (reconnecting with
    backoff); the broker's state is the ttn feed's state on /healthz."""
    from cockpit.api.ingest_ttn import mqtt_handler
    from feeds.ttn_mqtt import MqttSubscription, parse_broker_url

    assert settings.mqtt_url is not None
    try:
        broker = parse_broker_url(settings.mqtt_url)
    except ValueError as exc:
        raise SettingsError(f"mqtt_url (COCKPIT_MQTT_URL): {exc}") from exc
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    broker = replace(
        broker,
        username=settings.mqtt_username or broker.username,
        password=password or broker.password,
    )
    health = svc.health.feed("ttn")
    link = broker.display()

    def on_state(state: FeedState) -> None:
        health.state = state
        health.links[link] = state

    feed = MqttSubscription(broker, settings.ttn_topic, mqtt_handler(svc), on_state=on_state)
    on_state(feed.state)
    feed.start()
    svc.extra_stats["ttn_mqtt"] = feed.stats
    return feed


_COT_REFRESH_S = 120.0  # hazards and detections again, well before their CoT stale time


async def _cot(settings: Settings, svc: Services, pipeline: Pipeline) -> CotServer:
    """The CoT TCP service: TAK users in (relayed to each other once on the bus), the
    picture out to every authenticated client, counted on /healthz under `cot`."""
    from cockpit.auth import device_may_post
    from feeds.cot_out import picture_to_cot, refresh_to_cot
    from feeds.cot_server import CotServer, parse_networks, parse_tcp_addr

    def authenticate(username: str, password: str) -> str | None:
        device = svc.auth.device_for_token(password)
        if device is None or device.name != username or not device_may_post(device, "cot"):
            return None
        return device.name

    server = CotServer(
        incident=svc.incident,
        authenticate=authenticate,
        publish=pipeline.publish,
        wait_committed=pipeline.wait_committed,
        relay_after=settings.cot_relay_after,
        health=svc.health.feed("cot"),
        trusted=parse_networks(settings.cot_trusted_networks),
        max_event_bytes=settings.cot_max_event_bytes,
        flush_s=settings.cot_flush_ms / 1000,
        clock=svc.clock,
    )
    if settings.cot_listen:
        try:
            await server.listen(*parse_tcp_addr(settings.cot_listen))
        except (OSError, ValueError) as exc:
            raise SettingsError(
                f"cot_listen (COCKPIT_COT_LISTEN) = {settings.cot_listen!r}: {exc}"
            ) from exc
    if settings.cot_send_to:
        server.connect_to(*parse_tcp_addr(settings.cot_send_to))

    def relayed(entity: str) -> bool:
        return entity in server.relayed_entities

    def on_fold(batch: Sequence[Event]) -> None:
        # Sent as browsers are pushed: once folded, i.e. on the bus the recorder reads.
        if server.clients:
            server.send_picture(picture_to_cot(batch, pipeline.situation, utcnow(), relayed))

    async def refresh() -> None:
        while True:
            await asyncio.sleep(_COT_REFRESH_S)
            if server.clients:
                server.send_picture(refresh_to_cot(pipeline.situation, utcnow()))

    pipeline.on_fold.append(on_fold)
    server.background(refresh())
    svc.extra_stats["cot"] = server.stats_view
    return server


def _adler_alerts(settings: Settings, svc: Services, pipeline: Pipeline) -> AlertSender:
    """Responder alerts out to the A.D.Le.R. platform (from the recording process only)."""
    if settings.adler_alert_token is None:
        raise SettingsError(
            "adler_alert_url (COCKPIT_ADLER_ALERT_URL) needs adler_alert_token "
            "(COCKPIT_ADLER_ALERT_TOKEN): alerts carry addresses, never unauthenticated"
        )
    sender = AlertSender(
        settings.adler_alert_url or "",
        settings.adler_alert_token.get_secret_value(),
        svc.health.feed("adler_out"),
        svc.clock,
    )

    def on_fold(batch: Sequence[Event]) -> None:
        if pipeline.recorder is not None:
            sender.on_fold(batch, pipeline.situation.detections)

    pipeline.on_fold.append(on_fold)
    sender.start()
    return sender


def _video_recorder(settings: Settings, svc: Services, pipeline: Pipeline) -> SegmentRecorder:
    """Every stream's packets to segments beside the incident's log; each closed segment
    is a `video.segment` event, so a replay finds the video of any moment."""
    folder = incident_folder(settings.data_dir, svc.incident)

    def segment(info: SegmentInfo) -> None:
        event = VideoSegmentEvent(
            id=new_event_id(),
            incident=svc.incident,
            source=Source(feed="video", device="recorder"),
            observed_at=info.end,
            received_at=utcnow(),
            payload=VideoSegment(
                stream=info.stream,
                path=f"video/{info.path}",
                start=info.start,
                end=info.end,
                codec=info.codec if info.codec in ("VP8", "H264") else "VP8",  # type: ignore[arg-type]
                frames=info.frames,
                bytes=info.bytes,
            ),
        )
        pipeline.publish_soon([checked(event)])

    recorder = SegmentRecorder(
        folder / "video", segment_s=settings.video_segment_s, on_segment=segment
    )

    def attach(stream: Stream) -> None:
        if stream.live and recorder not in stream.sinks:
            stream.sinks.append(recorder)
        elif not stream.live:
            recorder.close(stream.name)

    assert svc.media is not None
    svc.media.on_change.append(attach)
    svc.extra_stats["video_recording"] = recorder.stats
    return recorder


def _video_analyser(settings: Settings, svc: Services, pipeline: Pipeline) -> StreamAnalyser | None:
    """Hotspots in thermal streams, people in visual ones, as detection events placed on
    the ground through the drone's camera model."""
    if not settings.video_analysis:
        return None
    from cockpit.media.vision import StreamAnalyser, detection_event

    modes = dict(settings.video_analysis)

    def pose_for(stream: str) -> tuple[Pose, Camera] | None:
        sit = pipeline.situation
        entity = sit.entities.get(stream)  # by convention the stream is its drone's id
        fov = sit.cameras.get(stream, sit.default_camera)
        pose = camera_pose(entity) if entity is not None else None
        return None if pose is None or fov is None else (pose, Camera(*fov))

    def on_hits(stream: str, hits: list[DetectionData]) -> None:
        events = [detection_event(d, incident=svc.incident, actor=f"video:{stream}") for d in hits]
        pipeline.publish_soon(events)

    analyser = StreamAnalyser(
        modes=lambda stream: modes.get(stream),
        snapshot_dir=incident_folder(settings.data_dir, svc.incident) / "snapshots",
        on_hits=on_hits,
        pose_for=pose_for,
        max_fps=settings.vision_fps,
    )

    def attach(stream: Stream) -> None:
        if stream.live and stream.name in modes and analyser not in stream.sinks:
            stream.sinks.append(analyser)

    assert svc.media is not None
    svc.media.on_change.append(attach)
    svc.extra_stats["vision"] = analyser.stats
    return analyser


def _announce_video(pipeline: Pipeline, incident: str) -> Callable[[Stream], None]:
    """A stream going live or ending is an event: players find streams in the picture,
    and a replay knows when there was video."""

    def announce(stream: Stream) -> None:
        device = stream.owner.removeprefix("device:") or "media"
        now = utcnow()
        event = VideoStreamEvent(
            id=new_event_id(),
            incident=incident,
            source=Source(feed="video", device=device),
            observed_at=now,
            received_at=now,
            context=Context(actor=stream.owner or None),
            payload=VideoStream(
                stream=stream.name,
                entity=stream.name,
                state="live" if stream.live else "ended",
                codec=stream.codec if stream.codec in ("VP8", "H264") else None,  # type: ignore[arg-type]
            ),
        )
        pipeline.publish_soon([checked(event)])

    return announce
