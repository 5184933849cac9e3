"""master.web.accounts: per-device passwords (no default), scrypt hashes, sessions and
throttling. Pure apart from the state folder; time comes in as `now_s`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from master.web.accounts import (
    IDLE_S,
    INITIAL_PASSWORD_FILE,
    LOCK_S,
    MAX_FAILURES,
    USERS_FILE,
    Accounts,
    LoginRefused,
    PasswordRefused,
    User,
)


def _first_start(tmp_path: Path) -> tuple[Accounts, str]:
    accounts, initial = Accounts.open(tmp_path)
    assert initial == tmp_path / INITIAL_PASSWORD_FILE
    return accounts, initial.read_text().strip()


def test_first_start_generates_a_random_installer_password_kept_only_hashed(
        tmp_path: Path) -> None:
    _, password = _first_start(tmp_path)
    (tmp_path / "x").mkdir()
    other, _ = _first_start(tmp_path / "x")
    assert len(password) >= 16
    users = (tmp_path / USERS_FILE).read_text()
    assert password not in users
    assert set(json.loads(users)) == {"installer"}  # viewer: no password until set
    for name in (USERS_FILE, INITIAL_PASSWORD_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    # another charger gets another password; a restart keeps this one and makes no file
    assert (tmp_path / "x" / INITIAL_PASSWORD_FILE).read_text().strip() != password
    (tmp_path / INITIAL_PASSWORD_FILE).unlink()
    again, initial = Accounts.open(tmp_path)
    assert initial is None and not (tmp_path / INITIAL_PASSWORD_FILE).exists()
    assert again.login("installer", password, peer="a", now_s=0.0)
    assert other is not None


def test_login_session_and_logout(tmp_path: Path) -> None:
    accounts, password = _first_start(tmp_path)
    token = accounts.login("installer", password, peer="10.0.0.5", now_s=100.0)
    assert accounts.session(token, 101.0) == User("installer", "installer")
    assert accounts.session("forged", 101.0) is None
    accounts.logout(token)
    assert accounts.session(token, 102.0) is None


def test_a_session_ends_after_idle_time(tmp_path: Path) -> None:
    accounts, password = _first_start(tmp_path)
    token = accounts.login("installer", password, peer="p", now_s=0.0)
    assert accounts.session(token, IDLE_S - 1) is not None  # and it stays alive
    assert accounts.session(token, 2 * IDLE_S - 2) is not None
    assert accounts.session(token, 3 * IDLE_S) is None


@pytest.mark.parametrize(("user", "password", "reason"), [
    ("installer", "wrong", "wrong password"),
    ("viewer", "anything", "no password yet"),
    ("root", "anything", "no account"),
])
def test_refused_logins_say_why(tmp_path: Path, user: str, password: str, reason: str) -> None:
    accounts, _ = _first_start(tmp_path)
    with pytest.raises(LoginRefused, match=reason):
        accounts.login(user, password, peer="p", now_s=0.0)


def test_a_peer_is_locked_after_repeated_failures_then_let_in_again(tmp_path: Path) -> None:
    accounts, password = _first_start(tmp_path)
    for _ in range(MAX_FAILURES):
        with pytest.raises(LoginRefused, match="wrong password"):
            accounts.login("installer", "guess", peer="10.0.0.9", now_s=10.0)
    with pytest.raises(LoginRefused, match="locked") as locked:
        accounts.login("installer", password, peer="10.0.0.9", now_s=11.0)  # even the right one
    assert locked.value.retry_after_s == pytest.approx(LOCK_S - 1.0)
    assert accounts.login("installer", password, peer="10.0.0.7", now_s=11.0)  # another peer
    assert accounts.login("installer", password, peer="10.0.0.9", now_s=10.0 + LOCK_S)


def test_setting_a_password_ends_that_accounts_sessions(tmp_path: Path) -> None:
    accounts, password = _first_start(tmp_path)
    installer = accounts.login("installer", password, peer="p", now_s=0.0)
    accounts.set_password("viewer", "a viewer's password")
    viewer = accounts.login("viewer", "a viewer's password", peer="p", now_s=1.0)
    assert accounts.session(viewer, 2.0) == User("viewer", "viewer")
    accounts.set_password("viewer", "another viewer password")
    assert accounts.session(viewer, 3.0) is None
    assert accounts.session(installer, 3.0) is not None
    reopened, _ = Accounts.open(tmp_path)  # kept across restarts, hashed
    assert reopened.login("viewer", "another viewer password", peer="p", now_s=0.0)


@pytest.mark.parametrize(("user", "password", "says"), [
    ("viewer", "short", "10 to 256 characters"),
    ("admin", "long enough password", "installer or viewer"),
])
def test_bad_new_passwords_are_refused(tmp_path: Path, user: str, password: str,
                                       says: str) -> None:
    accounts, _ = _first_start(tmp_path)
    with pytest.raises(PasswordRefused, match=says):
        accounts.set_password(user, password)


def test_a_damaged_users_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / USERS_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="remove it and restart io7d"):
        Accounts.open(tmp_path)


def test_another_accounts_login_does_not_reset_the_installers_count(tmp_path: Path) -> None:
    """Review finding 3: failures count per (host, account); the viewer logging in from
    the same host used to pop the host's count, so an attacker holding the viewer's
    password guessed the installer's without end."""
    accounts, password = _first_start(tmp_path)
    accounts.set_password("viewer", "the viewer's password")
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(LoginRefused, match="wrong password"):
            accounts.login("installer", "guess", peer="10.0.0.9", now_s=10.0)
    assert accounts.login("viewer", "the viewer's password", peer="10.0.0.9", now_s=10.0)
    with pytest.raises(LoginRefused, match="wrong password"):
        accounts.login("installer", "guess", peer="10.0.0.9", now_s=10.0)
    with pytest.raises(LoginRefused, match="locked"):
        accounts.login("installer", password, peer="10.0.0.9", now_s=11.0)
    # the viewer is its own count: the installer's lock does not lock it out
    assert accounts.login("viewer", "the viewer's password", peer="10.0.0.9", now_s=11.0)


def test_a_stale_temporary_users_file_does_not_block_a_password_change(
        tmp_path: Path) -> None:
    """Review finding 9: the users file was written through a fixed `.tmp` name, which two
    threads (a login's set_password and another) shared; a leftover one (here one that
    cannot even be opened) broke every later write."""
    accounts, _ = _first_start(tmp_path)
    (tmp_path / (USERS_FILE + ".tmp")).mkdir()
    accounts.set_password("viewer", "the viewer's password")
    assert "viewer" in json.loads((tmp_path / USERS_FILE).read_text())
    assert stat.S_IMODE((tmp_path / USERS_FILE).stat().st_mode) == 0o600


def test_the_initial_password_file_goes_once_the_installer_has_changed_it(
        tmp_path: Path) -> None:
    """Review finding 10: the clear first password stayed on disk (and announced) after
    the installer chose its own."""
    accounts, _ = _first_start(tmp_path)
    accounts.set_password("viewer", "the viewer's password")
    assert (tmp_path / INITIAL_PASSWORD_FILE).exists()
    accounts.set_password("installer", "the installer's own password")
    assert not (tmp_path / INITIAL_PASSWORD_FILE).exists()


def test_changing_ones_own_password_needs_the_current_one(tmp_path: Path) -> None:
    """Review finding 10: a stolen session could change its account's password."""
    accounts, password = _first_start(tmp_path)
    with pytest.raises(LoginRefused, match="wrong password"):
        accounts.change_own_password("installer", "not it", "a brand new password",
                                     peer="p", now_s=0.0)
    accounts.change_own_password("installer", password, "a brand new password",
                                 peer="p", now_s=0.0)
    assert accounts.login("installer", "a brand new password", peer="p", now_s=1.0)
