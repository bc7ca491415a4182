"""HTTP and WebSocket routes, one module per concern; `cockpit.server` mounts them."""

__all__: list[str] = []
