"""Per-device web accounts (issue 14 §1, UK Smart Charge Point Regulations: no default
password): two accounts, `installer` and `viewer`, and the sessions logged in.

1. At first start the installer gets a random password (secrets.token_urlsafe), stored
   only as a scrypt hash with its own salt in `<state dir>/web-users.json` (0600); the
   clear password is written once to `<state dir>/web-initial-password` (0600) for the
   installer to read, and never again. The viewer has no password (cannot log in) until
   the installer sets one.
2. A login returns a session token (secrets.token_urlsafe, 256 bits): the cookie value
   for the browser and the bearer token for API clients. Sessions live in memory and end
   at logout, after IDLE_S unused, or when io7d stops.
3. Throttling per peer: after MAX_FAILURES failed logins in a row, that peer is refused
   for LOCK_S without a password being checked (a success resets its count).
4. Changing a password ends every session of that account.
Pure apart from the users file: `now_s` (monotonic) comes in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

USERS_FILE = "web-users.json"
INITIAL_PASSWORD_FILE = "web-initial-password"
# scrypt cost: n=2**14, r=8 (RFC 7914's interactive-login example): ~50 ms, 16 MiB.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_LEN = 10  # shorter is refused (NCSC advice: length over complexity)
MAX_PASSWORD_LEN = 256
MAX_FAILURES = 5  # rule 3
LOCK_S = 30.0
IDLE_S = 12 * 3600.0  # rule 2: a day's commissioning visit


class Role(enum.StrEnum):
    INSTALLER = "installer"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class User:
    """Who is logged in: the account name is its role."""

    name: str
    role: str


class LoginRefused(Exception):
    """A refused login: `reason` for the security log, `retry_after_s` when locked."""

    def __init__(self, reason: str, retry_after_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class PasswordRefused(ValueError):
    """A new password that is not acceptable (the message says what would be)."""


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                          dklen=32)


@dataclass(slots=True)
class _Session:
    user: User
    last_s: float


@dataclass(slots=True)
class _Peer:
    failures: int = 0
    locked_until_s: float = 0.0


@dataclass
class Accounts:
    """The accounts of one charger, kept in `path` (rule 1)."""

    path: Path
    hashes: dict[str, dict[str, str]]  # account -> {"salt": hex, "scrypt": hex}
    sessions: dict[str, _Session] = field(default_factory=dict)
    peers: dict[str, _Peer] = field(default_factory=dict)

    @classmethod
    def open(cls, state_dir: Path) -> tuple[Accounts, Path | None]:
        """The accounts of `state_dir`, made at first start. Returns them and the initial
        password file when this call made it (rule 1), else None. Raises OSError or
        ValueError (a damaged users file: the message says which)."""
        path = state_dir / USERS_FILE
        if path.exists():
            try:
                hashes = json.loads(path.read_text())
                if not isinstance(hashes, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                raise ValueError(f"{path} is damaged ({exc}): remove it and restart io7d "
                                 f"for a new installer password in {INITIAL_PASSWORD_FILE}"
                                 ) from None
            return cls(path, hashes), None
        password = secrets.token_urlsafe(12)  # 96 bits, 16 characters
        accounts = cls(path, {})
        accounts._store(Role.INSTALLER, password)
        initial = state_dir / INITIAL_PASSWORD_FILE
        _write_private(initial, password + "\n")
        return accounts, initial

    def _store(self, account: str, password: str) -> None:
        salt = secrets.token_bytes(16)
        self.hashes[account] = {"salt": salt.hex(),
                                "scrypt": hash_password(password, salt).hex()}
        _write_private(self.path, json.dumps(self.hashes, indent=1) + "\n")

    def has_password(self, account: str) -> bool:
        return account in self.hashes

    def login(self, account: str, password: str, *, peer: str, now_s: float) -> str:
        """A new session token. Raises LoginRefused (rules 1 and 3)."""
        state = self.peers.setdefault(peer, _Peer())
        if now_s < state.locked_until_s:
            raise LoginRefused(f"too many failed logins from {peer}: locked",
                               retry_after_s=state.locked_until_s - now_s)
        stored = self.hashes.get(account)
        ok = False
        if stored is not None:
            digest = hash_password(password, bytes.fromhex(stored["salt"]))
            ok = hmac.compare_digest(digest, bytes.fromhex(stored["scrypt"]))
        if not ok:
            state.failures += 1
            if state.failures >= MAX_FAILURES:
                state.failures, state.locked_until_s = 0, now_s + LOCK_S
            if account not in (Role.INSTALLER, Role.VIEWER):
                raise LoginRefused(f"no account {account[:32]!r}")
            raise LoginRefused("wrong password" if stored is not None
                               else f"account {account} has no password yet")
        self.peers.pop(peer, None)
        self._expire(now_s)
        token = secrets.token_urlsafe(32)
        self.sessions[token] = _Session(User(account, account), now_s)
        return token

    def session(self, token: str, now_s: float) -> User | None:
        """The user of a live session (and it stays alive), None if none."""
        found = self.sessions.get(token)
        if found is None or now_s - found.last_s > IDLE_S:
            self.sessions.pop(token, None)
            return None
        found.last_s = now_s
        return found.user

    def logout(self, token: str) -> None:
        self.sessions.pop(token, None)

    def set_password(self, account: str, password: str) -> None:
        """Rule 4. Raises PasswordRefused."""
        if account not in (Role.INSTALLER, Role.VIEWER):
            raise PasswordRefused(f"no account {account[:32]!r}: installer or viewer")
        if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
            raise PasswordRefused(f"a password has {MIN_PASSWORD_LEN} to "
                                  f"{MAX_PASSWORD_LEN} characters")
        self._store(account, password)
        for token in [t for t, s in self.sessions.items() if s.user.name == account]:
            del self.sessions[token]

    def _expire(self, now_s: float) -> None:
        for token in [t for t, s in self.sessions.items() if now_s - s.last_s > IDLE_S]:
            del self.sessions[token]


def _write_private(path: Path, text: str) -> None:
    """Atomically, 0600 from the start (never readable by others, even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
