"""The home energy manager's setpoint and the group limit command (master/mqttsetpoint.py):
named rows, accepted and refused."""

from __future__ import annotations

import pytest

from master.mqttsetpoint import SOURCE, SetpointError, parse_group_limit, parse_setpoint

T0 = 1_750_000_000.0


def parse(payload: bytes) -> object:
    return parse_setpoint(payload, installed_limit_a=32.0, max_valid_s=3600, now_unix_s=T0)


@pytest.mark.parametrize("payload, limit, until", [
    pytest.param(b'{"limit_a": 20, "valid_s": 60}', (20.0, 20.0, 20.0), T0 + 60, id="one"),
    pytest.param(b'{"limit_a": [20, 16.5, 0], "valid_s": 1.5}', (20.0, 16.5, 0.0), T0 + 1.5,
                 id="per phase, 0 pauses"),
    pytest.param(b'{"limit_a": 32, "valid_s": 3600}', (32.0, 32.0, 32.0), T0 + 3600,
                 id="at the installed limit, longest validity"),
])
def test_accepted(payload: bytes, limit: tuple[float, float, float], until: float) -> None:
    got = parse_setpoint(payload, installed_limit_a=32.0, max_valid_s=3600, now_unix_s=T0)
    assert got.limit is not None
    assert (got.limit.limit_a, got.limit.valid_until_unix_s, got.limit.source) == (
        limit, until, SOURCE)


def test_valid_s_0_withdraws() -> None:
    assert parse_setpoint(b'{"valid_s": 0}', installed_limit_a=32, max_valid_s=60,
                          now_unix_s=T0).limit is None


@pytest.mark.parametrize("payload, words", [
    pytest.param(b"20", "JSON object", id="not an object"),
    pytest.param(b"{nope", "not JSON", id="not JSON"),
    pytest.param(b'{"limit_a": NaN, "valid_s": 60}', "not JSON", id="NaN"),
    pytest.param(b'{"limit_a": 40, "valid_s": 60}', "[0, 32] A: the installed limit",
                 id="above the installed limit"),
    pytest.param(b'{"limit_a": -1, "valid_s": 60}', "[0, 32]", id="negative"),
    pytest.param(b'{"limit_a": [20, 20], "valid_s": 60}', "three", id="two phases"),
    pytest.param(b'{"limit_a": [20, "x", 20], "valid_s": 60}', "limit_a (L2)", id="a word"),
    pytest.param(b'{"limit_a": true, "valid_s": 60}', "limit_a", id="a boolean"),
    pytest.param(b'{"limit_a": 20}', "valid_s is required", id="no validity"),
    pytest.param(b'{"limit_a": 20, "valid_s": 3601}', "[0, 3600]", id="too long"),
    pytest.param(b'{"limit_a": 20, "valid_s": -5}', "[0, 3600]", id="negative validity"),
    pytest.param(b'{"valid_s": 60}', "limit_a is required", id="no limit"),
    pytest.param(b'{"limit": 20, "valid_s": 60}', "unknown key 'limit'", id="a typo"),
    pytest.param(b"\xff\xfe", "not JSON", id="not UTF-8"),
    pytest.param(b" " * 2000, "at most 1024 bytes", id="too big"),
])
def test_refused_with_words(payload: bytes, words: str) -> None:
    with pytest.raises(SetpointError) as err:
        parse(payload)
    assert words in str(err.value)


@pytest.mark.parametrize("payload, value", [(b"20", 20.0), (b" 16.5\n", 16.5)])
def test_group_limit_command(payload: bytes, value: float) -> None:
    assert parse_group_limit(payload) == value


@pytest.mark.parametrize("payload", [b"twenty", b"nan", b"inf", b""])
def test_group_limit_command_refused(payload: bytes) -> None:
    with pytest.raises(SetpointError, match="group limit"):
        parse_group_limit(payload)
