"""The agent's last seen master term survives a restart (agent/termstore.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.termstore import (
    TermFileError,
    load_last_seen_term,
    store_last_seen_term,
    term_file,
)


def test_a_new_charger_has_seen_no_term(tmp_path: Path) -> None:
    assert load_last_seen_term(tmp_path) == 0


def test_a_stored_term_is_read_back_and_replaced(tmp_path: Path) -> None:
    store_last_seen_term(tmp_path, 5)
    assert load_last_seen_term(tmp_path) == 5
    store_last_seen_term(tmp_path, 9)
    assert load_last_seen_term(tmp_path) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master-term"]  # no .tmp left


@pytest.mark.parametrize("text", ["", "abc", "-3", "1.5", str(2**53 + 1)])
def test_a_file_that_holds_no_term_is_reported_with_what_to_do(tmp_path: Path,
                                                              text: str) -> None:
    term_file(tmp_path).write_text(text)
    with pytest.raises(TermFileError, match="delete the file"):
        load_last_seen_term(tmp_path)


def test_a_term_out_of_range_is_not_stored(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        store_last_seen_term(tmp_path, -1)
    assert not term_file(tmp_path).exists()
