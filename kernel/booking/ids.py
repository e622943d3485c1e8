"""Booking and workflow ids, derived from the guest and their idempotency key.

The same request twice (same guest, same key) is the same booking, so the id is a hash of both;
base32 keeps it URL- and workflow-id-safe.
"""

from __future__ import annotations

import base64
import hashlib


def booking_id(guest_did: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{guest_did}\n{idempotency_key}".encode()).digest()
    return base64.b32encode(digest[:15]).decode().lower()


def workflow_id(booking: str) -> str:
    return f"booking-{booking}"
