"""`huddle firehose`: the firehose consumer process.

Without HUDDLE_RELAY_URL it stays idle (and /readyz says so). The consumer itself is built by the
firehose issue; until then a configured relay is reported as not connected rather than faked.
"""

from __future__ import annotations

import asyncio
import logging

from models.settings import get_settings

log = logging.getLogger("huddle.firehose")


async def run_firehose_process() -> None:
    from workers.cli import install_stop_signals

    settings = get_settings()
    stop = asyncio.Event()
    install_stop_signals(asyncio.get_running_loop(), stop)
    if not settings.relay_url:
        log.info("no HUDDLE_RELAY_URL configured: firehose consumer idle")
    else:
        log.warning("firehose consumer for %s is not built yet: idle", settings.relay_url)
    await stop.wait()
