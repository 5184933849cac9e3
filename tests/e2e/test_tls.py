"""Mutual TLS on loopback with certificates made by io7-pki (issue 11 §1-2, §5).

A tiny real grpc.aio server with protos/tls.py's server credentials and one method that
runs the application's check (protos/revocation.authenticate_peer) the way the master's
services will, and real clients with protos/tls.py's channel credentials. What must be
refused by the handshake is seen to never reach the handler.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from master.pki import Pki
from protos.identity import Kind, server_name
from protos.revocation import CrlFile, PeerRefused, authenticate_peer
from protos.tls import (
    TlsFiles,
    TlsMaterial,
    channel_credentials,
    channel_options,
    load_tls,
    server_credentials,
    validity_problem,
)
from tests.tlssupport import make_site

pytestmark = pytest.mark.e2e

SITE = "garage"
METHOD = "/io7.test.Who/Who"
CALL_TIMEOUT_S = 10.0  # generous: only a refusal or an answer is asserted, never speed


@dataclass
class WhoServer:
    port: int
    crl: CrlFile
    seen: list[str] = field(default_factory=list)  # what the handler was reached with


@asynccontextmanager
async def serve(material: TlsMaterial, crl: CrlFile) -> AsyncIterator[WhoServer]:
    state = WhoServer(port=0, crl=crl)

    async def who(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        try:
            identity = authenticate_peer(context.auth_context(), site=SITE, crl=crl.current())
        except PeerRefused as e:
            state.seen.append(f"refused: {e.reason}")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, e.reason)
        state.seen.append(identity.uri)
        return identity.uri.encode()

    handler = grpc.method_handlers_generic_handler(
        "io7.test.Who", {"Who": grpc.unary_unary_rpc_method_handler(who)})
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    state.port = server.add_secure_port("127.0.0.1:0", server_credentials(material))
    await server.start()
    try:
        yield state
    finally:
        await server.stop(None)


async def call(port: int, creds: grpc.ChannelCredentials) -> str:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds,
                                       options=channel_options(SITE)) as channel:
        who = channel.unary_unary(METHOD)
        reply: bytes = await who(b"", timeout=CALL_TIMEOUT_S)
        return reply.decode()


def material(pki: Pki, kind: Kind, name: str) -> TlsMaterial:
    return load_tls(TlsFiles.in_folder(pki.identity_folder(kind, name)))


@pytest.fixture
def site(tmp_path: Path) -> Pki:
    return make_site(tmp_path / "site", SITE)


@pytest.fixture
def crl(site: Pki) -> CrlFile:
    return CrlFile(site.crl, load_tls(TlsFiles.in_folder(site.identity_folder(
        Kind.CHARGER, "io7-01"))).ca)


async def test_a_charger_and_an_operator_of_the_site_are_served_as_who_they_are(
        site: Pki, crl: CrlFile) -> None:
    master = material(site, Kind.CHARGER, "io7-01")
    async with serve(master, crl) as srv:
        agent = channel_credentials(material(site, Kind.CHARGER, "io7-02"))
        assert await call(srv.port, agent) == "io7://garage/charger/io7-02"
        viewer = channel_credentials(material(site, Kind.OPERATOR, "bob"))
        assert await call(srv.port, viewer) == "io7://garage/operator/bob?role=viewer"


async def expect_handshake_refused(srv: WhoServer, creds: grpc.ChannelCredentials) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(srv.port, creds)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE, err.value
    assert srv.seen == []  # refused by TLS: no handler ever ran


async def test_a_client_without_a_certificate_is_refused_at_the_handshake(
        site: Pki, crl: CrlFile) -> None:
    master = material(site, Kind.CHARGER, "io7-01")
    async with serve(master, crl) as srv:
        await expect_handshake_refused(srv, grpc.ssl_channel_credentials(master.ca_pem))


async def test_another_cas_certificate_is_refused_at_the_handshake(
        site: Pki, crl: CrlFile, tmp_path: Path) -> None:
    # Same site name and charger id: only the CA differs (an attacker's own io7-pki).
    rogue = make_site(tmp_path / "rogue", SITE)
    async with serve(material(site, Kind.CHARGER, "io7-01"), crl) as srv:
        await expect_handshake_refused(
            srv, channel_credentials(material(rogue, Kind.CHARGER, "io7-02")))
        # ... even presented with our CA as its trust root
        forged = material(rogue, Kind.OPERATOR, "alice")
        await expect_handshake_refused(srv, grpc.ssl_channel_credentials(
            material(site, Kind.CHARGER, "io7-02").ca_pem, forged.key_pem, forged.cert_pem))


async def test_an_expired_certificate_is_refused_at_the_handshake(
        site: Pki, crl: CrlFile) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    cert = site.issue(Kind.CHARGER, "io7-03", now=past, days=30)
    assert validity_problem(cert, dt.datetime.now(dt.UTC)) is not None
    async with serve(material(site, Kind.CHARGER, "io7-01"), crl) as srv:
        await expect_handshake_refused(
            srv, channel_credentials(material(site, Kind.CHARGER, "io7-03")))


async def test_a_revoked_certificate_is_refused_by_the_application_check(
        site: Pki, crl: CrlFile) -> None:
    agent = channel_credentials(material(site, Kind.CHARGER, "io7-02"))
    async with serve(material(site, Kind.CHARGER, "io7-01"), crl) as srv:
        assert await call(srv.port, agent) == "io7://garage/charger/io7-02"
        revoked, _ = site.revoke("io7-02", now=dt.datetime.now(dt.UTC))  # the CRL file changes
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(srv.port, agent)
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert err.value.details() == (
            f"io7://garage/charger/io7-02: certificate {revoked.serial_number:x} is revoked")
        # the others carry on
        other = channel_credentials(material(site, Kind.OPERATOR, "alice"))
        assert await call(srv.port, other) == "io7://garage/operator/alice?role=installer"


async def test_a_fake_master_is_refused_by_the_client(site: Pki, tmp_path: Path) -> None:
    rogue = make_site(tmp_path / "rogue", SITE)  # same site name, same server name
    fake = material(rogue, Kind.CHARGER, "io7-01")
    async with serve(fake, CrlFile(rogue.crl, fake.ca)) as srv:
        agent = channel_credentials(material(site, Kind.CHARGER, "io7-02"))
        await expect_handshake_refused(srv, agent)


async def test_an_operator_certificate_cannot_serve_as_a_master(site: Pki,
                                                                crl: CrlFile) -> None:
    # Same CA, but clientAuth only and no server name: a stolen io7ctl key is no master.
    async with serve(material(site, Kind.OPERATOR, "alice"), crl) as srv:
        agent = channel_credentials(material(site, Kind.CHARGER, "io7-02"))
        await expect_handshake_refused(srv, agent)


async def test_tls_12_or_13_and_the_server_name_is_checked(site: Pki, crl: CrlFile) -> None:
    master = material(site, Kind.CHARGER, "io7-01")
    folder = site.identity_folder(Kind.CHARGER, "io7-02")

    def handshake(hostname: str, version: ssl.TLSVersion) -> str | None:
        ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        ctx.maximum_version = version
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", srv.port), timeout=CALL_TIMEOUT_S) as s, \
                ctx.wrap_socket(s, server_hostname=hostname) as tls:
            return tls.version()

    async with serve(master, crl) as srv:
        name = server_name(SITE)
        assert await asyncio.to_thread(handshake, name, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert await asyncio.to_thread(handshake, name, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            await asyncio.to_thread(handshake, "chargers.other.io7.internal",
                                    ssl.TLSVersion.TLSv1_3)


def test_files_made_by_the_cli_load_and_a_copied_folder_works(tmp_path: Path) -> None:
    """What an installer does: io7-pki on the laptop, the folder copied to the charger."""
    d = tmp_path / "pki"
    for args in (["init", "--site", SITE], ["issue", "charger", "io7-09"]):
        subprocess.run([sys.executable, "-m", "master.pki", "--dir", str(d), *args],
                       check=True, capture_output=True, timeout=60)
    on_charger = tmp_path / "etc-io7-tls"
    shutil.copytree(d / "chargers" / "io7-09", on_charger)
    m = load_tls(TlsFiles.in_folder(on_charger))
    assert (m.site, m.identity.name, m.identity.role) == (SITE, "io7-09", None)
