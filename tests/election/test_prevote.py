"""master.election.prevote: an election only when a majority lost the leader too."""

from __future__ import annotations

import pytest

from master.election.prevote import PreVote

FIVE = frozenset(f"io7-0{i}" for i in range(1, 6))


def vote(me: str = "io7-01") -> PreVote:
    return PreVote(me=me, members=FIVE, min_election_s=0.4)


def test_a_member_that_hears_its_leader_neither_asks_nor_grants() -> None:
    p = vote()
    p.heard_leader(10.0)
    assert not p.should_ask(10.3) and not p.grant(10.3)
    assert p.should_ask(10.4) and p.grant(10.4)  # silent for min_election_s


def test_asks_at_most_every_ask_period() -> None:
    p = vote()
    assert p.should_ask(1.0)
    assert not p.should_ask(1.05)
    assert p.should_ask(1.1)


def test_a_majority_of_fresh_grants_lets_it_campaign() -> None:
    p = vote()
    assert not p.may_campaign(5.0)  # alone: 1 of 5
    p.on_reply("io7-02", True, 5.0)
    assert not p.may_campaign(5.0)  # 2 of 5
    p.on_reply("io7-03", True, 5.1)
    assert p.may_campaign(5.2)  # 3 of 5
    assert not p.may_campaign(6.05)  # io7-02's grant is older than grant_valid_s
    p.on_reply("io7-03", False, 5.3)  # a refusal withdraws the earlier grant
    p.on_reply("io7-04", True, 5.3)
    p.on_reply("io7-02", True, 5.3)
    assert p.may_campaign(5.4)


def test_hearing_a_leader_forgets_the_grants() -> None:
    p = vote()
    for peer in ("io7-02", "io7-03", "io7-04"):
        p.on_reply(peer, True, 5.0)
    p.heard_leader(5.1)
    assert not p.may_campaign(5.2)


def test_replies_from_strangers_or_itself_do_not_count() -> None:
    p = vote()
    p.on_reply("io7-09", True, 5.0)
    p.on_reply("io7-01", True, 5.0)
    p.on_reply("io7-02", True, 5.0)
    assert not p.may_campaign(5.0)


def test_a_hand_over_campaigns_without_a_pre_vote() -> None:
    p = vote()
    p.heard_leader(10.0)
    p.on_timeout_now(10.05)
    assert p.may_campaign(10.1)
    assert not p.may_campaign(12.1)  # transfer_s later


def test_the_transports_answer_pre_votes_and_pass_raft_messages_on() -> None:
    p = vote()
    deliver, reply = p.received("io7-02", {"type": "pre_vote", "term": 0}, 5.0, 3)
    assert not deliver and reply == {"type": "pre_vote_reply", "term": 0, "granted": True}
    assert p.received("io7-02", {"type": "pre_vote_reply", "term": 0, "granted": True},
                      5.0, 3) == (False, None)
    ae = {"type": "append_entries", "term": 3, "commit_index": 1, "prevLogIdx": 1,
          "prevLogTerm": 3}
    assert p.received("io7-03", ae, 5.1, 3) == (True, None)
    assert not p.grant(5.2)  # it heard a leader
    assert p.received("io7-03", {"type": "timeout_now", "term": 3}, 5.3, 3) == (True, None)
    assert p.may_campaign(5.4)


def test_a_member_ahead_of_the_leader_it_hears_may_campaign_at_once() -> None:
    """Rule 5: in term 9 it ignores a term-7 leader (Raft); only an election helps."""
    p = vote()
    ae = {"type": "append_entries", "term": 7, "commit_index": 1, "prevLogIdx": 1,
          "prevLogTerm": 7}
    assert p.received("io7-03", ae, 5.0, 9) == (True, None)  # PySyncObj drops it itself
    assert p.grant(5.5)  # not counted as hearing a leader
    assert p.may_campaign(5.05)


def test_a_member_outside_the_group_is_refused() -> None:
    with pytest.raises(ValueError, match="not among the members"):
        PreVote(me="io7-09", members=FIVE, min_election_s=0.4)
