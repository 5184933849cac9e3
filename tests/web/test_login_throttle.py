"""Parallel logins (review finding 1, from /tmp/r1/throttle.py): FastAPI runs `login` in
anyio's 40-thread pool, so 40 parallel POST /api/login from one host used to check 40
passwords (scrypt: 16 MiB each, ~760 MB peak) before any failure counted, and none was
refused with 429. Now a host has one check in flight at a time (the others: 429), an
attempt counts as a failure before its hash, and at most HASH_SLOTS hashes run at once
whoever asks. The counts are of hashes done, not times."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hw.securitylog import SecurityLog
from master.web import accounts as accounts_mod
from master.web import auth
from master.web.accounts import HASH_SLOTS, MAX_FAILURES, Accounts


class _Station:
    """What the login routes read of a Station: accounts, the security log, a clock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.accounts, _ = Accounts.open(folder)
        self.security = SecurityLog(folder / "security.log")
        self.clock = time.monotonic
        self.charger_id = "io7-01"


class _Counted:
    """The real hash_password, counting calls and the most running at once."""

    def __init__(self) -> None:
        self.calls = self.running = self.most = 0
        self.lock = threading.Lock()
        self.real = accounts_mod.hash_password

    def __call__(self, password: str, salt: bytes) -> bytes:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.real(password, salt)
        finally:
            with self.lock:
                self.running -= 1


async def _burst(station: _Station, hosts: list[str]) -> list[int]:
    app = FastAPI()
    app.state.station = station
    app.include_router(auth.router)

    async def one(i: int, host: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(host, 1000 + i))
        async with httpx.AsyncClient(transport=transport, base_url="http://io7") as c:
            r = await c.post("/api/login", json={"user": "installer", "password": f"g{i}"})
            return r.status_code

    return list(await asyncio.gather(*(one(i, h) for i, h in enumerate(hosts))))


def test_parallel_logins_from_one_host_check_few_passwords(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    station = _Station(tmp_path)  # its first start hashes the first password
    counted = _Counted()
    monkeypatch.setattr(accounts_mod, "hash_password", counted)
    codes = asyncio.run(_burst(station, ["10.0.0.9"] * 40))
    got = Counter(codes)
    assert set(got) <= {401, 429}, got
    assert got[401] == counted.calls <= MAX_FAILURES, (got, counted.calls)
    assert got[429] >= 40 - MAX_FAILURES
    assert counted.most <= 1


def test_parallel_logins_from_many_hosts_hash_a_few_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    station = _Station(tmp_path)  # its first start hashes the first password
    counted = _Counted()
    monkeypatch.setattr(accounts_mod, "hash_password", counted)
    codes = asyncio.run(_burst(station, [f"10.0.1.{i}" for i in range(24)]))
    assert Counter(codes) == {401: 24}  # one attempt each: each one checked
    assert counted.calls == 24
    assert counted.most <= HASH_SLOTS  # memory: HASH_SLOTS x 16 MiB at most
