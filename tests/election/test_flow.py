"""master.election.flow: one append_entries in flight per follower."""

from __future__ import annotations

import pytest

from master.election.flow import AppendWindow, stale, with_term

AE = {"type": "append_entries", "term": 3}
ANSWER = {"type": "next_node_idx", "next_node_idx": 9, "reset": True, "success": False}


def test_a_second_append_entries_waits_for_the_answer_to_the_first() -> None:
    w = AppendWindow(timeout_s=1.0)
    assert w.may_send("io7-02", AE, 10.0)
    assert not w.may_send("io7-02", AE, 10.1)  # dropped: the next heartbeat carries it
    assert w.may_send("io7-03", AE, 10.1)  # another follower has its own window
    w.on_received("io7-02", ANSWER)
    assert w.may_send("io7-02", AE, 10.2)
    assert w.dropped == 1


def test_a_lost_message_or_answer_frees_the_window_after_the_timeout() -> None:
    w = AppendWindow(timeout_s=1.0)
    assert w.may_send("io7-02", AE, 10.0)
    assert not w.may_send("io7-02", AE, 10.99)
    assert w.may_send("io7-02", AE, 11.0)


def test_the_default_window_lets_a_heartbeat_through_every_fifth_of_a_second() -> None:
    w = AppendWindow()
    assert w.may_send("io7-02", AE, 10.0)
    assert not w.may_send("io7-02", AE, 10.19)
    assert w.may_send("io7-02", AE, 10.21)


def test_votes_and_answers_always_pass() -> None:
    w = AppendWindow()
    assert w.may_send("io7-02", AE, 10.0)
    vote = {"type": "request_vote", "term": 4, "last_log_index": 1, "last_log_term": 1}
    assert w.may_send("io7-02", vote, 10.0) and w.may_send("io7-02", ANSWER, 10.0)
    w.on_received("io7-02", vote)  # not an answer to append_entries
    assert not w.may_send("io7-02", AE, 10.1)


def test_a_window_without_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        AppendWindow(timeout_s=0.0)


def test_a_followers_answer_carries_its_term_and_a_stale_one_is_dropped() -> None:
    answer = {"type": "next_node_idx", "next_node_idx": 9, "reset": False, "success": True}
    sent = with_term(answer, 7)
    assert sent["term"] == 7 and "term" not in answer
    assert with_term(AE, 7) is AE  # only answers carry it
    late = dict(sent)
    assert stale(late, 8)  # a reply from term 7 reaching the leader of term 8
    fresh = dict(sent)
    assert not stale(fresh, 7) and "term" not in fresh  # PySyncObj never sees the field
    assert not stale(dict(answer), 8)  # from a peer without it: passed on
