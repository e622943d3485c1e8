"""Which command may be given by whom, in which state: the update validators' rules.

A refusal is a sentence a caller can act on; `None` means the command is accepted.
"""

from __future__ import annotations

from typing import Literal

from kernel.booking.states import CONFIRMED, HELD, PENDING

Command = Literal["finalize", "approve", "decline", "cancel", "reschedule"]


def role_of(caller_did: str, *, host_did: str, guest_did: str) -> str | None:
    if caller_did == guest_did:
        return "guest"
    if caller_did == host_did:
        return "host"
    return None


def refusal(
    command: Command,
    *,
    state: str,
    role: str | None,
    guest_finalized: bool,
    host_approved: bool,
    requires_approval: bool,
) -> str | None:
    """Why `command` by `role` is refused in `state`, or None when it is allowed."""
    if role is None:
        return "only the booking's host or guest may change it"
    if command == "finalize":
        if role != "guest":
            return "only the guest can finalize a booking"
        if state != HELD:
            return f"the booking is {state}; only a held booking can be finalized"
        if guest_finalized:
            return "the booking is already finalized"
        return None
    if command in ("approve", "decline"):
        if role != "host":
            return f"only the host can {command} a booking"
        if state != HELD:
            return f"the booking is {state}; only a held booking can be {command}d"
        if not requires_approval:
            return "this offer does not require the host's approval"
        if host_approved:
            return "the booking is already approved"
        return None
    if command == "cancel":
        if state == PENDING:
            return "the booking is still being matched; cancel it once it is held"
        if state not in (HELD, CONFIRMED):
            return f"the booking is already {state}"
        return None
    if command == "reschedule":
        if state != CONFIRMED:
            return f"the booking is {state}; only a confirmed booking can be rescheduled"
        return None
    return f"unknown command {command!r}"
