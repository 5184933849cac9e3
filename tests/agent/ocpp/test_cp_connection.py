"""The link to the back office: security profiles 1 and 2 (a CA made here with the openssl
CLI), reconnecting, a new AuthorizationKey, and charging while the CSMS is away."""

from __future__ import annotations

import random
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from ocpp.v16 import call

from agent.faults import OcppStatus
from agent.ocpp.configkeys import ConfigurationStore, open_db
from agent.ocpp.connection import Backoff, LinkState, basic_auth, endpoint_uri
from agent.ocpp.settings import OcppSettings
from agent.service import Agent
from hw.sim.csms import Csms
from tests.agent.ocpp.test_chargepoint import (
    CP,
    agent_config,
    booted,
    eventually,
    link_state,
    running,
)

PASSWORD = "Hk4-pZ9q-Tr7w-Xe2"  # 17 printable characters
PROFILE_1 = f'security_profile = 1\nauthorization_key = "{PASSWORD}"'


async def failed_attempts(agent: Agent, count: int) -> None:
    """Wait until `count` connection attempts in a row have failed."""
    await eventually(lambda: agent.ocpp is not None and agent.ocpp.failures >= count,
                     f"{count} failed connection attempts")


# --- pure parts ---------------------------------------------------------------------------------
def test_url_and_basic_auth_header() -> None:
    settings = OcppSettings(url="wss://csms.example.com/ocpp/", charge_point_id="io7-01")
    assert endpoint_uri(settings) == "wss://csms.example.com/ocpp/io7-01"
    # RFC 7617's own example: Aladdin / open sesame
    assert basic_auth("Aladdin", b"open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


@pytest.mark.parametrize(("failures", "lo_s", "hi_s"), [
    (1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (7, 30.0, 60.0), (50, 30.0, 60.0)])
def test_backoff_doubles_with_jitter_up_to_its_cap(failures: int, lo_s: float,
                                                   hi_s: float) -> None:
    rng = random.Random(7)
    delays = [Backoff().delay_s(failures, rng) for _ in range(200)]
    assert all(lo_s <= d <= hi_s for d in delays)
    assert max(delays) - min(delays) > (hi_s - lo_s) / 2  # spread: the jitter is real


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=0.0)
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=10.0, cap_s=5.0)
    with pytest.raises(ValueError, match="failures"):
        Backoff().delay_s(0, random.Random(1))


# --- security profile 1 -------------------------------------------------------------------------
async def test_profile_1_with_the_right_password_boots(tmp_path: Path) -> None:
    async with Csms(passwords={CP: PASSWORD.encode()}) as csms, \
            running(agent_config(tmp_path, csms.url, ocpp=PROFILE_1)) as agent:
        await booted(csms, agent)


async def test_profile_1_with_a_wrong_password_is_refused_and_retried(tmp_path: Path) -> None:
    async with Csms(passwords={CP: b"another-password-16"}) as csms, \
            running(agent_config(tmp_path, csms.url, ocpp=PROFILE_1)) as agent:
        await failed_attempts(agent, 2)
        assert agent.ocpp is not None and agent.ocpp.state in (LinkState.OFFLINE,
                                                               LinkState.CONNECTING)
        assert csms.received(CP) == [] and csms.connected() == set()


async def test_a_new_authorization_key_is_used_at_once_and_kept(tmp_path: Path) -> None:
    new_key = bytes.fromhex("8f3a1c9e57d20b64e1a97c3f5d08b2e6a4917c5f")  # 20 random bytes
    async with Csms(passwords={CP: PASSWORD.encode()}) as csms:
        config = agent_config(tmp_path, csms.url, ocpp=PROFILE_1)
        async with running(config) as agent:
            await booted(csms, agent)
            bad = await csms.call(CP, call.ChangeConfiguration(key="AuthorizationKey",
                                                               value="not hex at all"))
            assert bad.status == "Rejected"
            short = await csms.call(CP, call.ChangeConfiguration(key="AuthorizationKey",
                                                                 value="00ff"))
            assert short.status == "Rejected"
            weak = await csms.call(CP, call.ChangeConfiguration(
                key="AuthorizationKey", value=b"change-me-please".hex()))  # a placeholder
            assert weak.status == "Rejected"
            assert csms.passwords is not None
            csms.passwords[CP] = new_key  # the CSMS expects it from the next connection
            mark = csms.mark()
            answer = await csms.call(CP, call.ChangeConfiguration(key="AuthorizationKey",
                                                                  value=new_key.hex()))
            assert answer.status == "Accepted"
            await booted(csms, agent, since=mark)  # reconnected with the new key
        mark = csms.mark()
        async with running(config) as agent:  # a restart keeps the CSMS's key
            await booted(csms, agent, since=mark)
    db = open_db(config.state_dir)
    assert ConfigurationStore(db).value("AuthorizationKey") == new_key.hex()
    db.close()


# --- security profile 2 (TLS) --------------------------------------------------------------------
def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(folder: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=io7 test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem signed server.pem (for 127.0.0.1 and localhost); other-ca.pem did not."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make a test CA")
    folder = tmp_path_factory.mktemp("pki")
    _make_ca(folder, "ca")
    _make_ca(folder, "other-ca")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
             cwd=folder)
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
             cwd=folder)
    return folder


def _server_tls(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    return context


async def test_profile_2_over_tls_with_the_csms_ca(tmp_path: Path, pki: Path) -> None:
    async with Csms(passwords={CP: PASSWORD.encode()}, ssl_context=_server_tls(pki)) as csms:
        assert csms.url.startswith("wss://")
        ocpp = (f'security_profile = 2\nauthorization_key = "{PASSWORD}"\n'
                f'ca_file = "{pki / "ca.pem"}"')
        async with running(agent_config(tmp_path, csms.url, ocpp=ocpp)) as agent:
            await booted(csms, agent)


async def test_profile_2_refuses_a_csms_its_ca_did_not_sign(tmp_path: Path, pki: Path) -> None:
    async with Csms(passwords={CP: PASSWORD.encode()}, ssl_context=_server_tls(pki)) as csms:
        ocpp = (f'security_profile = 2\nauthorization_key = "{PASSWORD}"\n'
                f'ca_file = "{pki / "other-ca.pem"}"')
        async with running(agent_config(tmp_path, csms.url, ocpp=ocpp)) as agent:
            await failed_attempts(agent, 2)
            assert csms.received(CP) == []


# --- availability of the back office -------------------------------------------------------------
async def test_reconnects_and_reports_everything_after_the_csms_restarts(
        tmp_path: Path) -> None:
    first = Csms()
    url = await first.start()
    port = int(url.rpartition(":")[2])
    async with running(agent_config(tmp_path, url)) as agent:
        await booted(first, agent)
        await first.stop()
        await failed_attempts(agent, 1)
        second = Csms()
        await second.start(port=port)
        try:
            await booted(second, agent)  # boot, then connectors 0, 1, 2 again
            assert [r.action for r in second.received(CP)][:1] == ["BootNotification"]
        finally:
            await second.stop()


async def test_charging_goes_on_without_the_back_office(tmp_path: Path) -> None:
    async with Csms() as nobody:
        url = nobody.url  # this port closes with the block: nobody listens there
    async with running(agent_config(tmp_path, url, evs="plugged")) as agent:
        await eventually(lambda: 1 in agent.outputs
                         and agent.outputs[1].status is OcppStatus.CHARGING, "charging")
        await link_state(agent, LinkState.OFFLINE)
        assert agent.ocpp is not None and agent.ocpp.failures >= 1
