"""Map tiles from a local MBTiles file (`map_mbtiles`), for a map without internet."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from starlette.responses import Response

from cockpit.api.deps import require_user
from cockpit.api.errors import ApiError
from cockpit.api.services import services
from cockpit.auth import User

__all__ = ["MBTiles", "router"]

router = APIRouter(tags=["map"])


class MBTiles:
    """Read-only access to one MBTiles file (SQLite; rows in TMS order, y flipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        meta = dict(self._conn.execute("SELECT name, value FROM metadata").fetchall())
        fmt = meta.get("format", "png")
        self.media_type = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}.get(
            fmt, "application/octet-stream"
        )

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        tms_y = (1 << z) - 1 - y
        with self._lock:
            row = self._conn.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (z, x, tms_y),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._conn.close()


@router.get("/tiles/{z}/{x}/{y}", summary="A map tile from the configured MBTiles file")
async def tile(
    request: Request,
    z: int = PathParam(ge=0, le=22),
    x: int = PathParam(ge=0),
    y: int = PathParam(ge=0),
    user: User = Depends(require_user),  # noqa: B008
) -> Response:
    svc = services(request)
    if svc.tiles is None:
        raise ApiError(404, "no tiles", "map_mbtiles", "no MBTiles file is configured")
    if x >= 1 << z or y >= 1 << z:
        raise ApiError(404, "no such tile", "x", f"x and y must be below {1 << z} at zoom {z}")
    data = await asyncio.to_thread(svc.tiles.tile, z, x, y)
    if data is None:
        return Response(status_code=204)  # outside the file's area: an empty tile
    return Response(
        data, media_type=svc.tiles.media_type, headers={"Cache-Control": "private, max-age=3600"}
    )
