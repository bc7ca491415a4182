"""HTTPS (issue 8): the real `cockpit serve` with a certificate made here, a browser's
view of it (cookie flags, HSTS), and configurations that must stop it with one line."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from tests.procs import Proc, Procs, free_port
from tests.serving import prepare, serve
from tests.test_api import msg

x509 = pytest.importorskip("cryptography.x509", reason="cryptography is not installed")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

HSTS = "max-age=31536000"


def make_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Tls:
    proc: Proc
    cert: Path
    key: Path
    other_key: Path
    data: Path
    passwords: dict[str, str]
    tokens: dict[str, str]
    procs: Procs

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.proc.port}"

    def trust(self) -> ssl.SSLContext:
        """Trusts this certificate only (and checks the host name against it)."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = make_pair(folder, "server")
    _, other_key = make_pair(folder, "other")
    data = folder / "data"
    tokens, passwords = prepare(data)
    procs = Procs(folder / "procs")
    env = {
        "COCKPIT_TLS_CERT": str(cert),
        "COCKPIT_TLS_KEY": str(key),
        "COCKPIT_INCIDENT": "tls-test",
    }
    proc = procs.start("serve", "--data-dir", str(data), port=free_port(), env=env)
    t = Tls(proc, cert, key, other_key, data, passwords, tokens, procs)
    try:
        asyncio.run(_wait_https(t))
        yield t
    finally:
        procs.close()


async def _wait_https(t: Tls, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=t.url, verify=t.trust(), timeout=2) as c:
        while True:
            if not t.proc.alive():
                raise AssertionError(f"serve exited\n{t.proc.tail()}")
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, f"no HTTPS answer\n{t.proc.tail()}"
            await asyncio.sleep(0.1)


async def test_log_in_over_https_gives_a_secure_cookie_and_hsts(tls: Tls) -> None:
    async with httpx.AsyncClient(base_url=tls.url, verify=tls.trust(), timeout=10) as c:
        r = await c.post(
            "/api/v1/session", json={"username": "el", "password": tls.passwords["el"]}
        )
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"].lower()
        assert "cockpit_session=" in cookie and "; secure" in cookie and "; httponly" in cookie
        assert r.headers["strict-transport-security"] == HSTS
        assert "includesubdomains" not in r.headers["strict-transport-security"].lower()
        # Every answer carries it: a page, an error, the anonymous health check.
        for path, code in (("/", 200), ("/no-such-page", 404), ("/healthz", 200)):
            r = await c.get(path)
            assert r.status_code == code and r.headers["strict-transport-security"] == HSTS
        # The cookie goes back over HTTPS: the session works.
        assert (await c.get("/api/v1/session")).json()["user"] == "el"
    # A device over wss:// with the same certificate.
    url = f"wss://127.0.0.1:{tls.proc.port}/ws/ingest/telemetry"
    headers = {"Authorization": f"Bearer {tls.tokens['robot']}"}
    async with websockets.connect(url, additional_headers=headers, ssl=tls.trust()) as ws:
        await ws.send(orjson.dumps(msg("tls-robot")))
        assert orjson.loads(await ws.recv())["seq"]


async def test_an_untrusted_certificate_and_plain_http_get_no_page(tls: Tls) -> None:
    async with httpx.AsyncClient(timeout=5) as c:  # the system's trust: not ours
        with pytest.raises(httpx.ConnectError):
            await c.get(f"{tls.url}/login")
        try:
            r = await c.get(f"http://127.0.0.1:{tls.proc.port}/login")
        except httpx.HTTPError:
            pass  # the TLS port drops the connection
        else:
            assert r.status_code >= 400 and "password" not in r.text


def _one_line(t: Tls, env: dict[str, str], *args: str) -> str:
    out = t.procs.run(
        *(args or ("serve",)),
        "--data-dir",
        str(t.data),
        "--port",
        str(free_port()),
        env={"COCKPIT_INCIDENT": "tls-bad", **env},
        timeout=60,
    )
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_a_key_of_another_certificate_is_one_line_naming_it(tls: Tls) -> None:
    line = _one_line(
        tls, {"COCKPIT_TLS_CERT": str(tls.cert), "COCKPIT_TLS_KEY": str(tls.other_key)}
    )
    assert line.startswith("cockpit: tls_key (COCKPIT_TLS_KEY)") and "does not match" in line


def test_a_missing_file_or_half_a_pair_is_one_line_naming_it(tls: Tls) -> None:
    missing = str(tls.data / "nowhere.pem")
    line = _one_line(tls, {"COCKPIT_TLS_CERT": missing, "COCKPIT_TLS_KEY": str(tls.key)})
    assert line.startswith("cockpit: tls_cert (COCKPIT_TLS_CERT)") and "no such file" in line
    line = _one_line(tls, {"COCKPIT_TLS_CERT": str(tls.cert)})
    assert line.startswith("cockpit: tls_key (COCKPIT_TLS_KEY)") and "missing" in line
    line = _one_line(tls, {"COCKPIT_TLS_CERT": str(tls.key), "COCKPIT_TLS_KEY": str(tls.key)})
    assert line.startswith("cockpit: tls_cert (COCKPIT_TLS_CERT)")


def test_the_demo_refuses_tls_with_one_line(tls: Tls) -> None:
    env = {"COCKPIT_TLS_CERT": str(tls.cert), "COCKPIT_TLS_KEY": str(tls.key)}
    line = _one_line(tls, env, "demo", "--no-browser", "--no-drones", "--no-ros")
    assert line.startswith("cockpit: tls_cert (COCKPIT_TLS_CERT)") and "demo" in line


async def test_hsts_and_a_secure_cookie_behind_a_tls_proxy(tmp_path: Path) -> None:
    """cookie_secure=true says a TLS-terminating proxy is in front: HSTS and a Secure
    cookie (a plain server has neither: see tests/test_limits.py)."""
    async with (
        serve(tmp_path / "data", cookie_secure=True) as s,
        httpx.AsyncClient(base_url=s.url) as c,
    ):
        r = await c.post("/api/v1/session", json={"username": "el", "password": s.passwords["el"]})
        assert r.status_code == 200
        assert "; secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"] == HSTS
        assert (await c.get("/healthz")).headers["strict-transport-security"] == HSTS
