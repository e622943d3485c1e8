"""The two small static files (CSS, JS), served from the package with a short cache."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.web.state import STATIC

router = APIRouter(include_in_schema=False)
_TYPES = {"huddle.css": "text/css; charset=utf-8", "huddle.js": "text/javascript; charset=utf-8"}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in _TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        (STATIC / name).read_bytes(),
        media_type=_TYPES[name],
        headers={"Cache-Control": "public, max-age=300"},
    )
