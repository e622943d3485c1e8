"""Matching: who may book (policy) and which slot a guest gets (engine)."""

from kernel.matching.engine import pick_slot
from kernel.matching.naive import pick_slot_naive
from kernel.matching.policy import FollowFact, PolicyDecision, evaluate_policy, required_follow_facts
from kernel.matching.request import BookedBlock, MatchRequest, MatchResult, NoSlotReason, Slot

__all__ = [
    "BookedBlock",
    "FollowFact",
    "MatchRequest",
    "MatchResult",
    "NoSlotReason",
    "PolicyDecision",
    "Slot",
    "evaluate_policy",
    "pick_slot",
    "pick_slot_naive",
    "required_follow_facts",
]
