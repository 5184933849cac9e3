"""Register maps, read plans and float32 decoding, without a bus."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw.errors import DeviceConfigError, DeviceGarbageError
from hw.modbus.decode import decode_block, float32_to_registers, registers_to_float32
from hw.modbus.profiles import (
    CT_KIT_SDM630_STYLE,
    SDM120,
    SDM630,
    Quantity,
    ReadBlock,
    RegisterProfile,
    RegisterTable,
    ct_kit_profile,
    meter_profile,
)


def spans(blocks: tuple[ReadBlock, ...]) -> list[tuple[int, int]]:
    return [(b.address, b.count) for b in blocks]


@pytest.mark.parametrize(
    ("profile", "quantities", "expected"),
    [
        (SDM630, [q for q, _ in SDM630.registers], [(0x0000, 18), (0x0034, 2), (0x0046, 4),
                                                     (0x0156, 2)]),
        (SDM120, [q for q, _ in SDM120.registers], [(0x0000, 2), (0x0006, 2), (0x000C, 2),
                                                     (0x0046, 4), (0x0156, 2)]),
        (CT_KIT_SDM630_STYLE, [Quantity.CURRENT_L1_A], [(0x0006, 2)]),
        (CT_KIT_SDM630_STYLE, [Quantity.CURRENT_L1_A, Quantity.CURRENT_L3_A],
         [(0x0006, 2), (0x000A, 2)]),
    ],
    ids=["sdm630 in four reads", "sdm120", "ct kit clamp 1", "ct kit clamps 1 and 3"],
)  # fmt: skip
def test_read_plans_are_contiguous_blocks(
    profile: RegisterProfile, quantities: list[Quantity], expected: list[tuple[int, int]]
) -> None:
    assert spans(profile.read_plan(quantities)) == expected


def test_read_plan_respects_the_per_read_limit() -> None:
    profile = RegisterProfile(
        name="long",
        table=RegisterTable.INPUT,
        registers=tuple((q, 2 * i) for i, q in enumerate(Quantity)),
        max_registers_per_read=8,
    )
    plan = profile.read_plan(q for q, _ in profile.registers)
    assert spans(plan) == [(0, 8), (8, 8), (16, 8), (24, 2)]
    assert sum(len(b.fields) for b in plan) == len(Quantity)


def test_eastron_float_order_high_word_first() -> None:
    assert float32_to_registers(230.0) == (0x4366, 0x0000)
    assert registers_to_float32(0x4366, 0x0000) == 230.0
    assert math.isnan(registers_to_float32(0x7FC0, 0x0000))


@given(st.floats(width=32, allow_nan=False))
def test_float32_round_trip(value: float) -> None:
    assert registers_to_float32(*float32_to_registers(value)) == value


@pytest.mark.parametrize(
    ("value", "match"),
    [(math.inf, "is inf"), (-1.0, "outside the plausible 0..500"), (501.0, "outside")],
    ids=["infinite", "negative voltage", "over 500 V"],
)
def test_decode_refuses_garbage(value: float, match: str) -> None:
    block = SDM630.read_plan([Quantity.VOLTAGE_L2_V])[0]
    with pytest.raises(DeviceGarbageError, match=f"register 0x0002: voltage L2.*{match}"):
        decode_block(device="meter", block=block, registers=list(float32_to_registers(value)))


def test_decode_refuses_a_wrong_count() -> None:
    block = SDM630.read_plan([Quantity.VOLTAGE_L1_V])[0]
    with pytest.raises(DeviceGarbageError, match="expected 2 registers, got 1"):
        decode_block(device="meter", block=block, registers=[0x4366])


def test_profiles_by_name_and_refusals() -> None:
    assert meter_profile("sdm120") is SDM120
    assert ct_kit_profile("ctkit") is CT_KIT_SDM630_STYLE
    with pytest.raises(DeviceConfigError, match="known: sdm120, sdm630"):
        meter_profile("abb")
    with pytest.raises(DeviceConfigError, match="overlap"):
        RegisterProfile(
            name="bad",
            table=RegisterTable.INPUT,
            registers=((Quantity.CURRENT_L1_A, 0), (Quantity.CURRENT_L2_A, 1)),
        )
    with pytest.raises(DeviceConfigError, match="mapped twice"):
        RegisterProfile(
            name="bad",
            table=RegisterTable.INPUT,
            registers=((Quantity.CURRENT_L1_A, 0), (Quantity.CURRENT_L1_A, 2)),
        )
