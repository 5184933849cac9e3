"""The general information page (manual ch. 6): make, model, charger id, addresses,
versions, uptime. Addresses are read from the interfaces (Linux: ioctl SIOCGIFADDR for
IPv4, /proc/net/if_inet6 for IPv6; loopback and link-local left out), since the LAN
address a technician types is not in any config file when DHCP gave it."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import ipaddress
import platform
import socket
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from agent.wire import SOFTWARE_VERSION
from master.web.station import Station

MAKE = "Ratio"
MODEL = "io7 Double"  # product.md ch. 2: two sockets
SIOCGIFADDR = 0x8915  # linux/sockios.h
PACKAGES = ("grpcio", "ocpp", "pymodbus", "fastapi", "uvicorn")


class ChargerInfo(BaseModel):
    make: str = Field(examples=[MAKE])
    model: str = Field(examples=[MODEL])
    charger_id: str
    group: str
    connectors: list[int]
    charger_current_limit_a: float = Field(description="in force now")
    lan_addresses: list[str] = Field(description="this charger's addresses, loopback and "
                                     "link-local left out")
    member_address: str = Field(description="its master candidate's host:port in "
                                "[group.members]")
    web_url: str | None
    leader_id: str | None = Field(description="the member leading the group; null during "
                                  "an election")
    versions: dict[str, str]
    uptime_s: float
    started_at_utc: str


def charger_info(station: Station) -> ChargerInfo:
    agent = station.agent
    uptime = station.uptime_s()
    started = datetime.now(UTC) - timedelta(seconds=uptime)
    return ChargerInfo(
        make=MAKE, model=MODEL, charger_id=station.charger_id,
        group=station.config.master.group.name,
        connectors=sorted(c.connector_id for c in agent.config.connectors),
        charger_current_limit_a=agent.applier.charger_limit_a,
        lan_addresses=lan_addresses(),
        member_address=station.config.members[station.charger_id],
        web_url=station.web_url(), leader_id=station.leader_id(), versions=versions(),
        uptime_s=round(uptime, 1), started_at_utc=started.isoformat(timespec="seconds"))


def versions() -> dict[str, str]:
    out = {"software": SOFTWARE_VERSION, "python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def lan_addresses() -> list[str]:
    """IPv4 then IPv6 addresses of the up interfaces, loopback and link-local left out."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), SIOCGIFADDR,
                                  struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on it
            found.append(socket.inet_ntoa(raw[20:24]))
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            hexaddr = line.split()[0]
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(hexaddr))))
    return [a for a in dict.fromkeys(found)
            if not (ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_link_local)]
