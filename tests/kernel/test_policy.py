import pytest

from kernel.matching.policy import FollowFact, evaluate_policy, required_follow_facts


@pytest.mark.parametrize(
    ("policy", "guest_follows_host", "host_follows_guest", "allowed", "reason"),
    [
        ("anyone", False, False, True, "anyone"),
        ("followers", True, False, True, "follower"),
        ("followers", False, True, False, "not_follower"),
        ("mutuals", True, True, True, "mutual"),
        ("mutuals", True, False, False, "not_mutual"),
        ("mutuals", False, True, False, "not_mutual"),
        # Unknown policies are as strict as mutuals, and say so.
        ("friendsOfFriends", True, False, False, "unknown_policy"),
        ("friendsOfFriends", True, True, True, "mutual"),
        ("", False, False, False, "unknown_policy"),
    ],
)
def test_policy_table(
    policy: str, guest_follows_host: bool, host_follows_guest: bool, allowed: bool, reason: str
) -> None:
    decision = evaluate_policy(
        policy, guest_follows_host=guest_follows_host, host_follows_guest=host_follows_guest
    )
    assert (decision.allowed, decision.reason) == (allowed, reason)
    assert decision.explanation
    if policy not in ("anyone", "followers", "mutuals"):
        assert "treated as 'mutuals'" in decision.explanation


def test_callers_fetch_only_the_facts_a_policy_needs() -> None:
    assert required_follow_facts("anyone") == frozenset()
    assert required_follow_facts("followers") == {FollowFact.GUEST_FOLLOWS_HOST}
    assert required_follow_facts("mutuals") == {FollowFact.GUEST_FOLLOWS_HOST, FollowFact.HOST_FOLLOWS_GUEST}
    assert required_follow_facts("somethingNew") == required_follow_facts("mutuals")
    assert evaluate_policy("anyone").allowed
    assert evaluate_policy("followers", guest_follows_host=True).allowed
    facts = {fact.value: True for fact in required_follow_facts("mutuals")}
    assert evaluate_policy("mutuals", **facts).allowed


def test_a_missing_needed_fact_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="host_follows_guest"):
        evaluate_policy("mutuals", guest_follows_host=True)
