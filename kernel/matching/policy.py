"""Who may book an offer: a pure function of two follow facts.

Policy is decided before any calendar is read, so a guest who may not book learns
nothing about the host's time. ``policy`` comes from a public record and is open-ended
(knownValues); a value this code does not know is treated as "mutuals", the most
restrictive policy it knows, never as something more open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FollowFact(StrEnum):
    """The facts a policy may need; the values are ``evaluate_policy``'s keyword names."""

    GUEST_FOLLOWS_HOST = "guest_follows_host"
    HOST_FOLLOWS_GUEST = "host_follows_guest"


_NEEDS: dict[str, frozenset[FollowFact]] = {
    "anyone": frozenset(),
    "followers": frozenset({FollowFact.GUEST_FOLLOWS_HOST}),
    "mutuals": frozenset({FollowFact.GUEST_FOLLOWS_HOST, FollowFact.HOST_FOLLOWS_GUEST}),
}
_MOST_RESTRICTIVE = "mutuals"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """``reason`` is a short code (what a denied booking reports); ``explanation`` is for people."""

    allowed: bool
    reason: str
    explanation: str


def effective_policy(policy: str) -> str:
    """The policy that applies: ``policy`` itself when known, else the most restrictive one."""
    return policy if policy in _NEEDS else _MOST_RESTRICTIVE


def required_follow_facts(policy: str) -> frozenset[FollowFact]:
    """The follow facts ``evaluate_policy`` needs for ``policy``, so callers look up only those."""
    return _NEEDS[effective_policy(policy)]


def evaluate_policy(
    policy: str, *, guest_follows_host: bool | None = None, host_follows_guest: bool | None = None
) -> PolicyDecision:
    """May this guest book? A fact left as None must be one the policy does not need."""
    applied = effective_policy(policy)
    facts = {
        FollowFact.GUEST_FOLLOWS_HOST: guest_follows_host,
        FollowFact.HOST_FOLLOWS_GUEST: host_follows_guest,
    }
    missing = [fact.value for fact in _NEEDS[applied] if facts[fact] is None]
    if missing:
        raise ValueError(f"policy {applied!r} needs {', '.join(missing)}")
    note = "" if applied == policy else f"Unknown booking policy {policy!r} is treated as 'mutuals'. "

    if applied == "anyone":
        return PolicyDecision(True, "anyone", "Anyone may book this offer.")
    if applied == "followers":
        if guest_follows_host:
            return PolicyDecision(True, "follower", "You follow the host, so you may book this offer.")
        return PolicyDecision(False, "not_follower", "Only people who follow the host may book this offer.")
    if guest_follows_host and host_follows_guest:
        return PolicyDecision(True, "mutual", note + "You and the host follow each other, so you may book.")
    return PolicyDecision(
        False,
        "unknown_policy" if note else "not_mutual",
        note + "Only people who follow the host and whom the host follows back may book this offer.",
    )
