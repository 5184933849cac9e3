"""The OCPP 1.6 security whitepaper over real websockets and real TLS on loopback: security
profile 3 against a back office that checks the client certificate, security events,
certificate management and ExtendedTriggerMessage. The CSMS's CA is made here
(tests.agent.ocpp.csmspki)."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from ocpp.v16 import call

from agent.config import AgentConfig
from agent.errors import ConfigError
from agent.ocpp.certstore import hash_data
from hw.securitylog import SecurityEvent, decode
from hw.sim.csms import Csms
from tests.agent.ocpp.csmspki import Ca, csms_tls, der, pem
from tests.agent.ocpp.test_chargepoint import CP, WAIT_S, agent_config, booted, running
from tests.agent.ocpp.test_cp_connection import PASSWORD, failed_attempts

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem signed server (127.0.0.1), cp (CN = CP) and other-id (CN io7-other);
    other-ca.pem signed foreign (CN = CP)."""
    folder = tmp_path_factory.mktemp("csms-pki")
    ca, other = Ca.make("test CSMS CA"), Ca.make("another CA")
    (folder / "ca.pem").write_text(pem(ca.cert))
    (folder / "other-ca.pem").write_text(pem(other.cert))
    ca.issue(folder, "server", "localhost", server=True)
    ca.issue(folder, "cp", CP)
    ca.issue(folder, "other-id", "io7-other")
    other.issue(folder, "foreign", CP)
    _CAS[folder] = ca
    return folder


_CAS: dict[Path, Ca] = {}


def profile_3(pki: Path, client: str = "cp") -> str:
    return (f'security_profile = 3\nca_file = "{pki / "ca.pem"}"\n'
            f'client_cert = "{pki / client}.pem"\nclient_key = "{pki / client}.key"')


def security_log(config: AgentConfig) -> list[SecurityEvent]:
    path = config.state_dir / "security.jsonl"
    return [e for e in map(decode, path.read_bytes().splitlines()) if e is not None]


def event_of(kind: str) -> object:
    return lambda p: p["type"] == kind


# --- profile 3: the back office checks the client certificate -------------------------------
async def test_profile_3_connects_with_its_client_certificate(tmp_path: Path,
                                                               pki: Path) -> None:
    async with Csms(ssl_context=csms_tls(pki, require_client=True),
                    check_client_id=True) as csms:
        config = agent_config(tmp_path, csms.url, ocpp=profile_3(pki))
        async with running(config) as agent:
            await booted(csms, agent)
            [startup] = await csms.wait_for(CP, "SecurityEventNotification", timeout_s=WAIT_S,
                                            where=event_of("StartupOfTheDevice"))
            # No Basic auth with profile 3, and the certificate is the configured one.
            assert agent.ocpp is not None and agent.ocpp.password() is None
            configured = x509.load_pem_x509_certificate((pki / "cp.pem").read_bytes())
            assert csms.client_certificate(CP) == der(configured)
            # Whitepaper: never back to a lower profile.
            down = await csms.call(CP, call.ChangeConfiguration(key="SecurityProfile",
                                                                value="2"))
            assert down.status == "Rejected"
            [refused] = await csms.wait_for(
                CP, "SecurityEventNotification", timeout_s=WAIT_S,
                where=lambda p: p["type"] == "ReconfigurationOfSecurityParameters")
            got = await csms.call(CP, call.GetConfiguration(key=["SecurityProfile"]))
            assert got.configuration_key[0]["value"] == "3"
    assert "security profile 3" in startup.payload["techInfo"]
    assert "lower" in refused.payload["techInfo"]
    kinds = [e.kind for e in security_log(config)]
    assert "ocpp_startup" in kinds and "ocpp_security_reconfigured" in kinds


@pytest.mark.parametrize("client", ["other-id", "foreign", None],
                         ids=["certificate for another id", "another CA's", "none"])
async def test_the_back_office_refuses_a_wrong_or_missing_certificate(
        tmp_path: Path, pki: Path, client: str | None) -> None:
    async with Csms(ssl_context=csms_tls(pki, require_client=True),
                    check_client_id=True) as csms:
        ocpp = profile_3(pki, client) if client is not None else (
            f'security_profile = 2\nauthorization_key = "{PASSWORD}"\n'
            f'ca_file = "{pki / "ca.pem"}"')
        config = agent_config(tmp_path, csms.url, ocpp=ocpp)
        async with running(config) as agent:
            await failed_attempts(agent, 2)
            assert csms.received(CP) == [] and csms.connected() == set()
    if client == "other-id":  # refused with HTTP 403 after the handshake: logged
        assert "ocpp_csms_refused_credentials" in [e.kind for e in security_log(config)]


@pytest.mark.parametrize(("ocpp", "key", "problem"), [
    ("security_profile = 3", "ocpp.client_cert", "needs the charge point's certificate"),
    ('security_profile = 3\nclient_cert = "{p}/cp.pem"', "ocpp.client_key", "go together"),
    ('security_profile = 3\nclient_cert = "{p}/cp.pem"\nclient_key = "{p}/other-id.key"',
     "ocpp.client_key", "is not the key of"),
    ('security_profile = 3\nclient_cert = "{p}/cp.pem"\nclient_key = "{p}/missing.key"',
     "ocpp.client_key", "no such file"),
    ('security_profile = 3\nclient_cert = "{p}/cp.pem"\nclient_key = "{p}/cp.key"\n'
     'authorization_key = "Hk4-pZ9q-Tr7w-Xe2"', "ocpp.authorization_key", "1 or 2"),
], ids=["no certificate", "no key", "key of another", "missing key", "basic auth too"])
def test_profile_3_settings_are_checked(tmp_path: Path, pki: Path, ocpp: str, key: str,
                                        problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        agent_config(tmp_path, "wss://127.0.0.1:9", ocpp=ocpp.format(p=pki))
    assert info.value.key == key and problem in str(info.value)


def test_a_client_key_others_can_read_is_refused(tmp_path: Path, pki: Path) -> None:
    loose = tmp_path / "loose.key"
    loose.write_bytes((pki / "cp.key").read_bytes())
    loose.chmod(0o644)
    ocpp = (f'security_profile = 3\nclient_cert = "{pki}/cp.pem"\n'
            f'client_key = "{loose}"')
    with pytest.raises(ConfigError, match="chmod 600"):
        agent_config(tmp_path, "wss://127.0.0.1:9", ocpp=ocpp)


# --- security events --------------------------------------------------------------------------
async def test_a_reset_is_notified_before_the_restart(tmp_path: Path) -> None:
    async with Csms() as csms:
        config = agent_config(tmp_path, csms.url)
        async with running(config) as agent:
            await booted(csms, agent)
            mark = csms.mark()
            assert (await csms.call(CP, call.Reset(type="Hard"))).status == "Accepted"
            [event] = await csms.wait_for(CP, "SecurityEventNotification", since=mark,
                                          where=event_of("ResetOrReboot"), timeout_s=WAIT_S)
            await booted(csms, agent, since=mark)
        after = [r.action for r in csms.received(CP, since=mark)]
    assert after.index("SecurityEventNotification") < after.index("BootNotification")
    assert event.payload["techInfo"] == "Hard reset requested by the CSMS"
    assert [e.detail for e in security_log(config) if e.kind == "ocpp_reset"] == [
        "ResetOrReboot: Hard reset requested by the CSMS"]


async def test_a_refused_profile_change_is_notified_and_queued_while_offline(
        tmp_path: Path, pki: Path) -> None:
    async with Csms() as csms:
        config = agent_config(tmp_path, csms.url)
        async with running(config) as agent:
            await booted(csms, agent)
            up = await csms.call(CP, call.ChangeConfiguration(key="SecurityProfile",
                                                              value="3"))
            assert up.status == "Rejected"  # ws:// and no client certificate
            [event] = await csms.wait_for(
                CP, "SecurityEventNotification", timeout_s=WAIT_S,
                where=event_of("ReconfigurationOfSecurityParameters"))
            assert "SecurityProfile 3 refused" in event.payload["techInfo"]
    # Queued durably: recorded while no back office listens, sent after the next boot.
    async with Csms() as nobody:
        url = nobody.url
    offline = agent_config(tmp_path, url)
    async with running(offline) as agent:
        await failed_attempts(agent, 1)
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        starts = await csms.wait_for(CP, "SecurityEventNotification", count=2,
                                     where=event_of("StartupOfTheDevice"),
                                     timeout_s=WAIT_S)
    assert len({s.unique_id for s in starts}) == 2  # the offline start's and this one's


# --- certificate management ---------------------------------------------------------------------
async def test_a_signed_certificate_is_installed_and_used_next(tmp_path: Path,
                                                               pki: Path) -> None:
    ca = _CAS[pki]
    async with Csms(ssl_context=csms_tls(pki, require_client=True),
                    check_client_id=True) as csms:
        config = agent_config(tmp_path, csms.url, ocpp=profile_3(pki))
        async with running(config) as agent:
            await booted(csms, agent)
            answer = await csms.call(CP, call.ExtendedTriggerMessage(
                requested_message="SignChargePointCertificate"))
            assert answer.status == "Accepted"
            [sign] = await csms.wait_for(CP, "SignCertificate", timeout_s=WAIT_S)
            pending = config.state_dir / "ocpp-certs" / "cp-key.pending.pem"
            assert stat.S_IMODE(pending.stat().st_mode) == 0o600
            assert "PRIVATE" not in sign.payload["csr"]
            # A certificate for another key is refused; the one for the CSR is taken.
            wrong = x509.load_pem_x509_certificate((pki / "cp.pem").read_bytes())
            refused = await csms.call(CP, call.CertificateSigned(certificate_chain=pem(wrong)))
            assert refused.status == "Rejected"
            new = ca.sign_csr(sign.payload["csr"])
            assert new.subject.rfc4514_string() == f"CN={CP}"
            ok = await csms.call(CP, call.CertificateSigned(certificate_chain=pem(new)))
            assert ok.status == "Accepted"
            mark = csms.mark()
            assert (await csms.call(CP, call.Reset(type="Soft"))).status == "Accepted"
            await booted(csms, agent, since=mark)
            assert csms.client_certificate(CP) == der(new)  # the next connection uses it
    key = config.state_dir / "ocpp-certs" / "cp-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and not pending.exists()
    kinds = [e.kind for e in security_log(config)]
    assert "ocpp_cp_certificate_refused" in kinds
    assert all("PRIVATE" not in e.detail for e in security_log(config))


async def test_root_certificates_install_list_delete(tmp_path: Path, pki: Path) -> None:
    root = (pki / "other-ca.pem").read_text()
    expected = hash_data(x509.load_pem_x509_certificate(root.encode())).to_json()
    csr_type = "CentralSystemRootCertificate"
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)

        async def ids(kind: str = csr_type) -> object:
            return await csms.call(CP, call.GetInstalledCertificateIds(certificate_type=kind))

        assert (await ids()).status == "NotFound"
        for _ in range(2):  # again: Accepted, nothing changes
            done = await csms.call(CP, call.InstallCertificate(certificate_type=csr_type,
                                                               certificate=root))
            assert done.status == "Accepted"
        leaf = await csms.call(CP, call.InstallCertificate(
            certificate_type=csr_type, certificate=(pki / "cp.pem").read_text()))
        assert leaf.status == "Rejected"  # not a CA certificate
        listed = await ids()
        assert listed.status == "Accepted"
        assert [{k: v for k, v in h.items()} for h in listed.certificate_hash_data] == [
            {"hash_algorithm": "SHA256", "issuer_name_hash": expected["issuerNameHash"],
             "issuer_key_hash": expected["issuerKeyHash"],
             "serial_number": expected["serialNumber"]}]
        assert (await ids("ManufacturerRootCertificate")).status == "NotFound"
        wanted = listed.certificate_hash_data[0]
        gone = await csms.call(CP, call.DeleteCertificate(certificate_hash_data=wanted))
        assert gone.status == "Accepted"
        again = await csms.call(CP, call.DeleteCertificate(certificate_hash_data=wanted))
        assert again.status == "NotFound"
        assert (await ids()).status == "NotFound"


# --- ExtendedTriggerMessage ----------------------------------------------------------------------
@pytest.mark.parametrize(("message", "connector_id", "status", "sent"), [
    ("BootNotification", None, "Accepted", "BootNotification"),
    ("Heartbeat", None, "Accepted", "Heartbeat"),
    ("StatusNotification", 1, "Accepted", "StatusNotification"),
    ("MeterValues", 1, "Accepted", None),  # sent from the last reading, if there is one
    ("FirmwareStatusNotification", None, "Accepted", "FirmwareStatusNotification"),
    ("LogStatusNotification", None, "NotImplemented", None),
    ("StatusNotification", 9, "Rejected", None),
])
async def test_extended_trigger_message(tmp_path: Path, message: str,
                                        connector_id: int | None, status: str,
                                        sent: str | None) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        mark = csms.mark()
        answer = await csms.call(CP, call.ExtendedTriggerMessage(
            requested_message=message, connector_id=connector_id))
        assert answer.status == status
        if sent is not None:
            [got] = await csms.wait_for(CP, sent, since=mark, timeout_s=WAIT_S)
            if connector_id is not None:
                assert got.payload["connectorId"] == connector_id


async def test_profile_2_rises_to_3_only_with_a_client_certificate(tmp_path: Path,
                                                                    pki: Path) -> None:
    """Whitepaper: upgrading to profile 3 needs the charge point's certificate; once the
    CSMS has signed one, the change is Accepted and the charge point reconnects with it."""
    ca = _CAS[pki]
    server = csms_tls(pki, require_client=True)
    server.verify_mode = ssl.CERT_OPTIONAL  # profile 2 comes without a client certificate
    async with Csms(ssl_context=server) as csms:
        ocpp = (f'security_profile = 2\nauthorization_key = "{PASSWORD}"\n'
                f'ca_file = "{pki / "ca.pem"}"')
        config = agent_config(tmp_path, csms.url, ocpp=ocpp)
        async with running(config) as agent:
            await booted(csms, agent)
            assert csms.client_certificate(CP) is None
            up = call.ChangeConfiguration(key="SecurityProfile", value="3")
            assert (await csms.call(CP, up)).status == "Rejected"  # no certificate yet
            await csms.call(CP, call.ExtendedTriggerMessage(
                requested_message="SignChargePointCertificate"))
            [sign] = await csms.wait_for(CP, "SignCertificate", timeout_s=WAIT_S)
            new = ca.sign_csr(sign.payload["csr"])
            signed = await csms.call(CP, call.CertificateSigned(certificate_chain=pem(new)))
            assert signed.status == "Accepted"
            mark = csms.mark()
            assert (await csms.call(CP, up)).status == "Accepted"
            await booted(csms, agent, since=mark)  # reconnected at profile 3
            assert csms.client_certificate(CP) == der(new)
            assert agent.ocpp is not None and agent.ocpp.profile() == 3
            assert agent.ocpp.password() is None
    techs = [e.detail for e in security_log(config) if e.kind == "ocpp_security_reconfigured"]
    assert any("SecurityProfile 3 refused" in t for t in techs)
    assert any("SecurityProfile 2 -> 3" in t for t in techs)
