"""The container's health check: GET /healthz on this container's own port.

Standard library only (the slim image has no curl). Healthy means HTTP 200 with
`"status": "ok"`; `degraded` (Redis unreachable, the recorder failing) is unhealthy, so
`docker compose ps` shows it. Honours COCKPIT_PORT, and COCKPIT_TLS_CERT for https.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("COCKPIT_PORT", "8050")
    context = None
    scheme = "http"
    if os.environ.get("COCKPIT_TLS_CERT"):
        scheme = "https"
        # Our own process over loopback: the certificate names the public host, not
        # 127.0.0.1, so it is not checked here (the proxy and browsers check it).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{scheme}://127.0.0.1:{port}/healthz"
    try:
        # A fixed loopback http(s) URL, never user input.
        with urllib.request.urlopen(url, timeout=4, context=context) as answer:  # noqa: S310
            body = json.load(answer)
    except (OSError, ValueError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    status = body.get("status") if isinstance(body, dict) else None
    if status != "ok":
        print(f"healthcheck: {url}: status {status!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
