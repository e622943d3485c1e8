"""Huddle's own `did:web` document, so PDSes can proxy to it and callers can address it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import SettingsDep

router = APIRouter(tags=["identity"])

SERVICE_ID = "#huddle_appview"
SERVICE_TYPE = "AtprotoAppView"


def did_document(service_did: str, public_url: str) -> dict[str, Any]:
    """The DID document of `service_did`, naming Huddle's AppView endpoint."""
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": service_did,
        "service": [
            {"id": SERVICE_ID, "type": SERVICE_TYPE, "serviceEndpoint": public_url.rstrip("/")},
        ],
    }


@router.get("/.well-known/did.json", response_model=None)
async def did_json(settings: SettingsDep) -> JSONResponse:
    """Huddle's did:web document (404 when the service DID is not a did:web)."""
    if not settings.service_did.startswith("did:web:"):
        return JSONResponse({"error": "NotFound", "message": "the service DID is not a did:web"}, 404)
    return JSONResponse(
        did_document(settings.service_did, settings.public_url),
        headers={"Cache-Control": "public, max-age=300"},
    )
