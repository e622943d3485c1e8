"""The web app: ATProto sign-in, guest pages, the host dashboard and the operators' colony.

`router` carries every page and its own lifespan (nested inside create_app's, after AppState is
set); create_app includes it last, so the API's own routes (`/bookings/{id}.ics`) match first.
"""

from fastapi import APIRouter

from api.web import admin, calendars, guest, host, login, static
from api.web.state import web_lifespan

router = APIRouter(lifespan=web_lifespan)
router.include_router(static.router)
router.include_router(login.router)
router.include_router(guest.router)
router.include_router(host.router)
router.include_router(calendars.router)
router.include_router(admin.router)

__all__ = ["router"]
