"""`io7-hw`: the installer's tool to read a meter or the Sense CT kit once and print it.

    io7-hw meter --port /dev/ttyUSB0 --profile sdm630 --address 1 --json
    io7-hw ctkit --port /dev/ttyUSB0 --clamps 1,2,3 --rated-a 100 --json
    io7-hw ctkit --tcp 127.0.0.1:5020 --clamps 1 --rated-a 60

It uses the same drivers as the services (`hw.modbus`), so what it prints is what the
master and the agent would see. Exit status: 0 read fine, 1 the device failed (timeout,
garbage, cannot open the port), 2 the command line asks for something impossible. With
`--json` the result (or the error, with device, register and reason) goes to stdout as one
JSON object; otherwise a short table, and errors to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from hw.errors import DeviceConfigError, DeviceError
from hw.modbus.ctkit import ClampConfig, CtKitConfig, ModbusCtKit
from hw.modbus.meter import MeterConfig, ModbusMeter
from hw.modbus.profiles import CT_KIT_PROFILES, METER_PROFILES, ct_kit_profile, meter_profile
from hw.modbus.transport import BusSettings, ModbusBus, SerialSettings, TcpSettings

EXIT_OK = 0
EXIT_DEVICE = 1
EXIT_USAGE = 2


def _bus_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the RS485 adapter, e.g. /dev/ttyUSB0")
    where.add_argument("--tcp", metavar="HOST:PORT", help="Modbus TCP gateway")
    parser.add_argument("--baud", type=int, default=9600, help="default 9600 (Eastron)")
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    parser.add_argument("--address", type=int, default=1, help="Modbus address, default 1")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds, at most 0.5")
    parser.add_argument("--retries", type=int, choices=(0, 1), default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="io7-hw", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    meter = commands.add_parser("meter", help="read a socket energy meter once")
    _bus_arguments(meter)
    meter.add_argument("--profile", choices=sorted(METER_PROFILES), default="sdm630")
    ctkit = commands.add_parser("ctkit", help="read the Sense CT kit once")
    _bus_arguments(ctkit)
    ctkit.add_argument("--profile", choices=sorted(CT_KIT_PROFILES), default="ctkit")
    ctkit.add_argument("--clamps", default="1,2,3", help="enabled clamps: 1,2,3 (B) or 1 (C)")
    ctkit.add_argument("--rated-a", type=float, default=100.0, help="the clamps' rated value")
    ctkit.add_argument("--reversed", default="", help="clamps mounted arrow-to-grid, e.g. 2")
    return parser


def _numbers(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise DeviceConfigError(
            device="io7-hw", reason=f"{what} {text!r}: give e.g. 1,2,3"
        ) from None


def _bus(args: argparse.Namespace) -> ModbusBus:
    endpoint: SerialSettings | TcpSettings
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise DeviceConfigError(device=args.tcp, reason="give --tcp as HOST:PORT")
        endpoint = TcpSettings(host=host, port=int(port))
    else:
        endpoint = SerialSettings(
            port=args.port, baudrate=args.baud, parity=args.parity, stopbits=args.stopbits
        )
    return ModbusBus(BusSettings(endpoint=endpoint, timeout_s=args.timeout, retries=args.retries))


async def _read(args: argparse.Namespace) -> dict[str, Any]:
    bus = _bus(args)
    try:
        if args.command == "meter":
            config = MeterConfig(profile=meter_profile(args.profile), device_id=args.address)
            reading = await ModbusMeter(bus, config).read_meter()
            return {
                "device": "meter",
                "profile": config.profile.name,
                "address": config.device_id,
                "bus": bus.where,
                "phase_voltages_v": list(reading.phase_voltages_v),
                "phase_currents_a": list(reading.phase_currents_a),
                "phase_powers_w": list(reading.phase_powers_w),
                "total_power_w": reading.total_power_w,
                "frequency_hz": reading.frequency_hz,
                "import_energy_wh": reading.import_energy_wh,
            }
        reversed_clamps = _numbers(args.reversed, "--reversed")
        kit = CtKitConfig(
            clamps=tuple(
                ClampConfig(clamp=n, rated_a=args.rated_a, reversed=n in reversed_clamps)
                for n in _numbers(args.clamps, "--clamps")
            ),
            profile=ct_kit_profile(args.profile),
            device_id=args.address,
        )
        clamps = await ModbusCtKit(bus, kit).read_clamps()
        return {
            "device": "ctkit",
            "profile": kit.profile.name,
            "address": kit.device_id,
            "bus": bus.where,
            "clamps": [{"clamp": c.clamp, "current_a": c.current_a} for c in clamps],
        }
    finally:
        bus.close()


def _rounded(value: Any) -> Any:
    """Round floats to 3 decimals: the float32 registers carry no more than that."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _print_table(result: dict[str, Any]) -> None:
    print(
        f"{result['device']} {result['profile']} at address {result['address']} on {result['bus']}"
    )
    if result["device"] == "ctkit":
        for clamp in result["clamps"]:
            print(f"  clamp #{clamp['clamp']}: {clamp['current_a']:8.2f} A")
        return
    for phase, (v, i, p) in enumerate(
        zip(
            result["phase_voltages_v"],
            result["phase_currents_a"],
            result["phase_powers_w"],
            strict=True,
        ),
        start=1,
    ):
        print(f"  L{phase}: {v:7.1f} V {i:8.2f} A {p:9.1f} W")
    print(
        f"  total {result['total_power_w']:.1f} W, {result['frequency_hz']:.2f} Hz, "
        f"import {result['import_energy_wh'] / 1000.0:.3f} kWh"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run `io7-hw`; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # our errors say it better
    try:
        result = asyncio.run(_read(args))
    except DeviceError as exc:
        status = EXIT_USAGE if isinstance(exc, DeviceConfigError) else EXIT_DEVICE
        error = {
            "type": type(exc).__name__,
            "device": exc.device,
            "register": exc.register,
            "reason": exc.reason,
        }
        if args.json:
            print(json.dumps({"error": error}))
        print(f"io7-hw: {exc}", file=sys.stderr)
        return status
    if args.json:
        print(json.dumps(_rounded(result)))
    else:
        _print_table(result)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
