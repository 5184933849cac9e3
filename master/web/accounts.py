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
3. Throttling per (host, account): an attempt counts as a failure before its password is
   checked (taken back when right); after MAX_FAILURES in a row that host is refused for
   that account for LOCK_S without a check. Another account's success resets nothing.
   A host has one check in flight at a time (the others are refused at once: 429), and
   at most HASH_SLOTS scrypt hashes run at once whoever asks (16 MiB each): FastAPI runs
   logins in a 40-thread pool, which otherwise meant 40 hashes and ~760 MB (review).
4. Changing a password ends every session of that account; changing one's own needs the
   current one; the installer's first password file goes once it has its own.
5. Thread-safe: logins and password changes run in FastAPI's threads while the loop
   reads sessions; one lock guards the tables, never held while hashing.
Pure apart from the users file: `now_s` (monotonic) comes in.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
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
HASH_SLOTS = 2  # rule 3: 32 MiB of scrypt at most, whatever the load
HASH_WAIT_S = 10.0  # a login waiting longer for a slot is refused (429)
MAX_PEERS = 4096  # throttle entries kept; beyond, unlocked ones are dropped
_UNKNOWN = "?"  # every other account name counts as one (bounded table)
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
    peers: dict[tuple[str, str], _Peer] = field(default_factory=dict)  # (host, account)
    checking: set[str] = field(default_factory=set)  # hosts with a check in flight
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _hashing: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(HASH_SLOTS), repr=False)

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
        accounts._store(Role.INSTALLER, password, first=True)
        initial = state_dir / INITIAL_PASSWORD_FILE
        _write_private(initial, password + "\n")
        return accounts, initial

    def _hash(self, password: str, salt: bytes) -> bytes:
        """scrypt in one of HASH_SLOTS (rule 3). Raises LoginRefused when none frees."""
        if not self._hashing.acquire(timeout=HASH_WAIT_S):
            raise LoginRefused("too many logins being checked at once: busy",
                               retry_after_s=1.0)
        try:
            return hash_password(password, salt)
        finally:
            self._hashing.release()

    def _store(self, account: str, password: str, *, first: bool = False) -> None:
        salt = secrets.token_bytes(16)
        entry = {"salt": salt.hex(), "scrypt": self._hash(password, salt).hex()}
        with self._lock:
            self.hashes[account] = entry
            _write_private(self.path, json.dumps(self.hashes, indent=1) + "\n")
            for token in [t for t, s in self.sessions.items() if s.user.name == account]:
                del self.sessions[token]
        if account == Role.INSTALLER and not first:  # rule 4: its own password now
            (self.path.parent / INITIAL_PASSWORD_FILE).unlink(missing_ok=True)

    def has_password(self, account: str) -> bool:
        return account in self.hashes

    def login(self, account: str, password: str, *, peer: str, now_s: float) -> str:
        """A new session token. Raises LoginRefused (rules 1 and 3)."""
        self._check(account, password, peer=peer, now_s=now_s)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expire(now_s)
            self.sessions[token] = _Session(User(account, account), now_s)
        return token

    def _check(self, account: str, password: str, *, peer: str, now_s: float) -> None:
        """Rule 3: `password` is `account`'s, or LoginRefused (`retry_after_s` > 0 when
        refused without a check: locked or busy)."""
        key = (peer, account if account in (Role.INSTALLER, Role.VIEWER) else _UNKNOWN)
        with self._lock:
            state = self.peers.get(key)
            if state is None:
                self._prune(now_s)
                state = self.peers[key] = _Peer()
            if now_s < state.locked_until_s:
                raise LoginRefused(f"too many failed logins from {peer}: locked",
                                   retry_after_s=state.locked_until_s - now_s)
            if peer in self.checking:
                raise LoginRefused(f"a login from {peer} is being checked: wait for its "
                                   "answer", retry_after_s=1.0)
            stored = self.hashes.get(account)
            state.failures += 1  # counted before the check, taken back if right
            self.checking.add(peer)
        ok = False
        try:
            if stored is not None:
                digest = self._hash(password, bytes.fromhex(stored["salt"]))
                ok = hmac.compare_digest(digest, bytes.fromhex(stored["scrypt"]))
        except LoginRefused:
            with self._lock:
                state.failures -= 1  # busy: nothing was checked
            raise
        finally:
            with self._lock:
                self.checking.discard(peer)
        with self._lock:
            if ok:
                self.peers.pop(key, None)  # this host and account only (review)
                return
            if state.failures >= MAX_FAILURES:
                state.failures, state.locked_until_s = 0, now_s + LOCK_S
        if key[1] == _UNKNOWN:
            raise LoginRefused(f"no account {account[:32]!r}")
        raise LoginRefused("wrong password" if stored is not None
                           else f"account {account} has no password yet")

    def _prune(self, now_s: float) -> None:
        if len(self.peers) >= MAX_PEERS:
            for key in [k for k, p in self.peers.items() if now_s >= p.locked_until_s]:
                del self.peers[key]

    def session(self, token: str, now_s: float) -> User | None:
        """The user of a live session (and it stays alive), None if none."""
        with self._lock:
            found = self.sessions.get(token)
            if found is None or now_s - found.last_s > IDLE_S:
                self.sessions.pop(token, None)
                return None
            found.last_s = now_s
            return found.user

    def alive(self, token: str, now_s: float) -> bool:
        """Whether the session is still open, without keeping it alive (an open live
        stream is not a user's activity)."""
        with self._lock:
            found = self.sessions.get(token)
            return found is not None and now_s - found.last_s <= IDLE_S

    def logout(self, token: str) -> None:
        with self._lock:
            self.sessions.pop(token, None)

    def set_password(self, account: str, password: str) -> None:
        """Rule 4. Raises PasswordRefused."""
        _acceptable(account, password)
        self._store(account, password)

    def change_own_password(self, account: str, current: str, password: str, *,
                            peer: str, now_s: float) -> None:
        """Rule 4 for one's own account: `current` checked as a login is (rule 3).
        Raises PasswordRefused or LoginRefused."""
        _acceptable(account, password)
        self._check(account, current, peer=peer, now_s=now_s)
        self._store(account, password)

    def _expire(self, now_s: float) -> None:
        for token in [t for t, s in self.sessions.items() if now_s - s.last_s > IDLE_S]:
            del self.sessions[token]


def _acceptable(account: str, password: str) -> None:
    if account not in (Role.INSTALLER, Role.VIEWER):
        raise PasswordRefused(f"no account {account[:32]!r}: installer or viewer")
    if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
        raise PasswordRefused(f"a password has {MIN_PASSWORD_LEN} to "
                              f"{MAX_PASSWORD_LEN} characters")


def _write_private(path: Path, text: str) -> None:
    """Atomically, 0600 from the start (never readable by others, even briefly)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:  # mkstemp: 0600 and a name of its own (two writers never share one)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
