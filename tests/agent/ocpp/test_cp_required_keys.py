"""OCPP 1.6 section 9: every configuration key the spec requires of the Core profile and of
the profiles this charge point implements (Local Auth List Management 9.2, Smart
Charging 9.4; Remote Trigger has no keys), as one table: present in GetConfiguration
with the right read-only flag, and each writable one takes a valid value and Rejects an
invalid one, over a real websocket to the test back office."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from ocpp.v16 import call

from agent.ocpp.keyvalues import phase_rotation
from hw.sim.csms import Csms
from master.allocation import Phase
from tests.agent.ocpp.test_chargepoint import CP, agent_config, booted, running

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Row:
    key: str
    readonly: bool
    valid: str | None = None  # writable keys: accepted, and read back as `shown`
    invalid: str | None = None  # writable keys: Rejected
    shown: str | None = None  # how `valid` reads back when normalised

    def __str__(self) -> str:
        return self.key


REQUIRED = [
    # 9.1 Core, required
    Row("AuthorizeRemoteTxRequests", False, "true", "maybe"),  # R or RW: our choice RW
    Row("ClockAlignedDataInterval", False, "900", "-1"),
    Row("ConnectionTimeOut", False, "90", "1.5"),
    Row("ConnectorPhaseRotation", False, "0.RST,1.RST,2.TSR", "1.XYZ"),
    Row("GetConfigurationMaxKeys", True),
    Row("HeartbeatInterval", False, "300", "five"),
    Row("LocalAuthorizeOffline", False, "false", "yes"),
    Row("LocalPreAuthorize", False, "TRUE", "1", shown="true"),
    Row("MeterValuesAlignedData", False, "Energy.Active.Import.Register", "Temperature"),
    Row("MeterValuesSampledData", False, "Voltage,Current.Import", "Bogus"),
    Row("MeterValueSampleInterval", False, "030", "-5", shown="30"),
    Row("NumberOfConnectors", True),
    Row("ResetRetries", False, "2", "x"),
    Row("StopTransactionOnEVSideDisconnect", False, "true", "nope"),
    Row("StopTransactionOnInvalidId", False, "false", "nope"),
    # Our StopTransaction.transactionData carries the register at Begin and End only:
    # StopTxn*DataMaxLength says 0, so the empty list is the one valid value.
    Row("StopTxnAlignedData", False, "", "Energy.Active.Import.Register"),
    Row("StopTxnSampledData", False, "", "Voltage"),
    Row("SupportedFeatureProfiles", True),
    Row("TransactionMessageAttempts", False, "5", "0"),
    Row("TransactionMessageRetryInterval", False, "30", "0"),
    Row("UnlockConnectorOnEVSideDisconnect", False, "true", "sometimes"),
    # 9.2 Local Auth List Management, required
    Row("LocalAuthListEnabled", False, "true", "on"),
    Row("LocalAuthListMaxLength", True),
    Row("SendLocalListMaxLength", True),
    # 9.4 Smart Charging, required
    Row("ChargeProfileMaxStackLevel", True),
    Row("ChargingScheduleAllowedChargingRateUnit", True),
    Row("ChargingScheduleMaxPeriods", True),
    Row("MaxChargingProfilesInstalled", True),
    # optional keys that tell the CSMS the limits of the lists above
    Row("ConnectorPhaseRotationMaxLength", True),
    Row("MeterValuesAlignedDataMaxLength", True),
    Row("MeterValuesSampledDataMaxLength", True),
    Row("StopTxnAlignedDataMaxLength", True),
    Row("StopTxnSampledDataMaxLength", True),
]
MORE_INVALID = [
    ("ConnectorPhaseRotation", "3.RST"),  # this charger has connectors 0 (itself), 1, 2
    ("ConnectorPhaseRotation", "1.RST,1.RTS"),  # one rotation per connector
    ("ConnectorPhaseRotation", "RST"),  # the connector id is required
]


async def test_required_keys_as_a_table(tmp_path: Path) -> None:
    async with Csms() as csms, running(agent_config(tmp_path, csms.url)) as agent:
        await booted(csms, agent)
        got = await csms.call(CP, call.GetConfiguration())
        readings = {k["key"]: k for k in got.configuration_key}
        assert not [r.key for r in REQUIRED if r.key not in readings], "missing keys"
        assert [r.key for r in REQUIRED if readings[r.key]["readonly"] != r.readonly] == []
        assert all("value" in readings[r.key] for r in REQUIRED)
        # the agent's wiring: connector 1 L1-L2-L3 (RST), 2 L2-L3-L1 (STR)
        assert readings["ConnectorPhaseRotation"]["value"] == "1.RST,2.STR"
        assert readings["StopTxnSampledDataMaxLength"]["value"] == "0"
        outcomes = {}
        for row in REQUIRED:
            tried = [("invalid", row.invalid), ("valid", row.valid)] if not row.readonly \
                else [("read-only", "1")]
            for what, value in tried:
                assert value is not None
                answer = await csms.call(CP, call.ChangeConfiguration(key=row.key,
                                                                      value=value))
                outcomes[(row.key, what)] = answer.status
        for key, value in MORE_INVALID:
            answer = await csms.call(CP, call.ChangeConfiguration(key=key, value=value))
            outcomes[(key, value)] = answer.status
        after = await csms.call(CP, call.GetConfiguration(key=[
            r.key for r in REQUIRED if not r.readonly]))
    expected = {}
    for row in REQUIRED:
        if row.readonly:
            expected[(row.key, "read-only")] = "Rejected"
        else:
            expected[(row.key, "invalid")] = "Rejected"
            expected[(row.key, "valid")] = "Accepted"
    expected.update({(k, v): "Rejected" for k, v in MORE_INVALID})
    assert outcomes == expected
    values = {k["key"]: k["value"] for k in after.configuration_key}
    assert values == {r.key: r.shown if r.shown is not None else r.valid
                      for r in REQUIRED if not r.readonly}


@pytest.mark.parametrize(("wiring", "rotation"), [
    ((Phase.L1, Phase.L2, Phase.L3), "RST"),
    ((Phase.L2, Phase.L3, Phase.L1), "STR"),
    ((Phase.L3, Phase.L1, Phase.L2), "TRS"),
    ((Phase.L1, Phase.L3, Phase.L2), "RTS"),
    ((Phase.L2, Phase.L1, Phase.L3), "SRT"),
    ((Phase.L3, Phase.L2, Phase.L1), "TSR"),
    ((Phase.L2, None, None), "NotApplicable"),  # single phase
    ((Phase.L1, Phase.L2, None), "Unknown"),  # two lines: no 1.6 name for it
])
def test_phase_rotation_from_the_wiring(wiring: tuple[Phase | None, ...], rotation: str
                                        ) -> None:
    assert phase_rotation({2: wiring, 1: (Phase.L1, Phase.L2, Phase.L3)}) == \
        f"1.RST,2.{rotation}"
