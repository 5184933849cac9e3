"""Serve simulated Modbus devices with pymodbus: RTU over a pty, or TCP on loopback.

`ModbusSimServer` runs a real pymodbus server (`ModbusSerialServer` with the RTU framer on
one end of a `PtyNullModem`, or `ModbusTcpServer`) over `SimulatedModbusDevice`s, so the
drivers in `hw.modbus` read it exactly as they would read the real device. Like a real
RS485 line, only the addresses served answer; others stay silent. pymodbus' packet and PDU
hooks apply the wire faults (SILENT drops the reply, SHORT_REPLY cuts two registers); the
connection handler holds a LATE device's reply back for `late_s` (the reply is made when
the request arrives, as a slow device would, and sent later).

Run as a process (what an installer-tool test or a demo uses):

    python -m hw.sim.modbus_server --ctkit --pty
    python -m hw.sim.modbus_server --meter --meter-profile sdm120 --tcp 127.0.0.1:5020

It prints one JSON line saying where it serves ({"endpoint": "pty", "port": "/dev/pts/7"}
or {"endpoint": "tcp", "host": ..., "port": ...}) and serves until SIGINT/SIGTERM. The CT
kit follows the site model, the meter an EV charging at `--offered-a`; `--start-h` sets
the time of day and `--speed` how many virtual seconds pass per real second (0 freezes the
physics, which makes the values predictable for tests). `--fault` starts with a fault;
with `--commands`, lines on stdin switch faults while it runs (`hw.sim.faultctl`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Mapping, Sequence

from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import SimDevice

from hw.modbus.profiles import CT_KIT_PROFILES, METER_PROFILES, Quantity
from hw.sim.board import SimConnector
from hw.sim.devices import ModbusFault, SimulatedModbusDevice, clamp_values, meter_values
from hw.sim.ev import EvModel, EvSpec
from hw.sim.faultctl import COMMANDS_HELP, answer, parse, read_commands
from hw.sim.pty import PtyNullModem
from hw.sim.site import SECONDS_PER_HOUR, SiteModel, SiteProfile, SiteSpec

MBAP_UNIT_ID_INDEX = 6  # Modbus TCP: transaction(2) protocol(2) length(2) unit id(1)
RTU_ADDRESS_INDEX = 0  # Modbus RTU: the address is the frame's first byte
SERIAL_BAUD = 9600  # nominal only: a pty passes bytes at memory speed


class _LateReplyHandler(ServerRequestHandler):
    """pymodbus' handler of one connection, sending a LATE device's replies late."""

    def __init__(self, owner: ModbusTcpServer | ModbusSerialServer,
                 sim: ModbusSimServer) -> None:
        super().__init__(owner, owner.trace_packet, owner.trace_pdu,  # type: ignore[no-untyped-call]
                         owner.trace_connect)
        self.sim = sim

    def pdu_send(self, pdu: ModbusPDU, addr: tuple[str, int] | None = None) -> None:
        device = self.sim.devices.get(pdu.dev_id)
        if device is None or device.fault is not ModbusFault.LATE or device.late_s <= 0.0:
            super().pdu_send(pdu, addr)
            return
        send = super().pdu_send  # pymodbus drops it if the connection is gone by then
        self.loop.call_later(device.late_s, send, pdu, addr)


class _SimTcpServer(ModbusTcpServer):
    sim: ModbusSimServer

    def callback_new_connection(self) -> _LateReplyHandler:
        return _LateReplyHandler(self, self.sim)


class _SimSerialServer(ModbusSerialServer):
    sim: ModbusSimServer

    def callback_new_connection(self) -> _LateReplyHandler:
        return _LateReplyHandler(self, self.sim)


class ModbusSimServer:
    """A pymodbus server over simulated devices, on one endpoint (pty or TCP)."""

    def __init__(self, devices: Sequence[SimulatedModbusDevice]) -> None:
        ids = [d.device_id for d in devices]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"need at least one device and distinct addresses, got {ids}")
        self.devices = {d.device_id: d for d in devices}
        self._server: ModbusSerialServer | ModbusTcpServer | None = None
        self._null_modem: PtyNullModem | None = None
        self._address_index = RTU_ADDRESS_INDEX

    def _sim_devices(self) -> list[SimDevice]:
        devices = [d.sim_device() for d in self.devices.values()]
        # id 0 catches every other address, so pymodbus does not log a missing device;
        # `_on_packet` then keeps its replies off the wire, like an empty bus address.
        catch_all = next(iter(self.devices.values())).sim_device()
        catch_all.id = 0
        catch_all.action = None
        return [*devices, catch_all]

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        if not sending or len(packet) <= self._address_index:
            return packet
        device = self.devices.get(packet[self._address_index])
        if device is None or device.fault is ModbusFault.SILENT:
            return b""
        return packet

    def _on_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        device = self.devices.get(pdu.dev_id)
        if sending and device is not None and device.fault is ModbusFault.SHORT_REPLY:
            pdu.registers = pdu.registers[:-2]
        return pdu

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Modbus TCP on `host:port` (0 picks a free port); return the port."""
        self._address_index = MBAP_UNIT_ID_INDEX
        server = _SimTcpServer(
            self._sim_devices(),
            address=(host, port),
            trace_packet=self._on_packet,
            trace_pdu=self._on_pdu,
        )
        server.sim = self
        await server.serve_forever(background=True)
        self._server = server
        listener = server.transport
        sockets = getattr(listener, "sockets", None)
        if not sockets:
            raise RuntimeError(f"the Modbus TCP server did not bind {host}:{port}")
        bound_port: int = sockets[0].getsockname()[1]
        return bound_port

    async def start_pty(self) -> str:
        """Serve Modbus RTU on a pty; return the path a client opens (`/dev/pts/N`)."""
        self._address_index = RTU_ADDRESS_INDEX
        null_modem = PtyNullModem()
        null_modem.start()
        self._null_modem = null_modem
        server = _SimSerialServer(
            self._sim_devices(),
            framer=FramerType.RTU,
            port=null_modem.server_path,
            baudrate=SERIAL_BAUD,
            trace_packet=self._on_packet,
            trace_pdu=self._on_pdu,
        )
        server.sim = self
        await server.serve_forever(background=True)
        self._server = server
        return null_modem.client_path

    async def stop(self) -> None:
        """Stop serving and release the pty or the socket."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        if self._null_modem is not None:
            self._null_modem.close()
            self._null_modem = None

    async def __aenter__(self) -> ModbusSimServer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()


class WallClockVirtualTime:
    """Virtual seconds since midnight that run `speed` times as fast as the wall clock."""

    def __init__(self, *, start_s: float, speed: float) -> None:
        self.start_s = start_s
        self.speed = speed
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self.start_s + self.speed * (time.monotonic() - self._t0)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hw.sim.modbus_server", description=__doc__.split("\n\n")[0],
        epilog=COMMANDS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--ctkit", action="store_true", help="a Sense CT kit on the site model")
    kind.add_argument("--meter", action="store_true", help="a socket meter on an EV model")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="Modbus RTU on a new pty")
    where.add_argument("--tcp", metavar="HOST:PORT", help="Modbus TCP, e.g. 127.0.0.1:5020")
    parser.add_argument("--address", type=int, default=1, help="Modbus address (default 1)")
    parser.add_argument("--start-h", type=float, default=12.0, help="time of day to start at")
    parser.add_argument("--speed", type=float, default=1.0, help="virtual s per real s")
    parser.add_argument("--commands", action="store_true",
                        help="switch faults at run time with lines on stdin (see below)")
    parser.add_argument("--fault", metavar="COMMAND", default="",
                        help="start with a fault, as a command: e.g. --fault 'late 700'")
    site = parser.add_argument_group("CT kit")
    site.add_argument("--ctkit-profile", choices=sorted(CT_KIT_PROFILES), default="ctkit")
    site.add_argument("--site", choices=[p.value for p in SiteProfile], default="office")
    site.add_argument("--peak-a", type=float, default=40.0)
    site.add_argument("--base-a", type=float, default=5.0, help="step profile: load before")
    site.add_argument("--step-a", type=float, default=30.0, help="step profile: added load")
    site.add_argument("--step-at-h", type=float, default=12.0, help="step profile: when")
    site.add_argument("--balanced", action="store_true",
                      help="the same load on every phase (default: 1.0/0.85/0.7)")
    site.add_argument("--solar-peak-a", type=float, default=0.0)
    site.add_argument("--noise-a", type=float, default=0.0)
    site.add_argument("--seed", type=int, default=0)
    meter = parser.add_argument_group("meter")
    meter.add_argument("--meter-profile", choices=sorted(METER_PROFILES), default="sdm630")
    meter.add_argument("--offered-a", type=float, default=16.0)
    meter.add_argument("--ev-phases", type=int, choices=(1, 3), default=3)
    meter.add_argument("--ev-max-a", type=float, default=16.0)
    meter.add_argument("--soc", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.fault:
        try:
            parse(f"fault {args.fault}")
        except ValueError as exc:
            parser.error(f"--fault: {exc}")
    return args


async def _build_device(args: argparse.Namespace) -> SimulatedModbusDevice:
    clock = WallClockVirtualTime(start_s=args.start_h * SECONDS_PER_HOUR, speed=args.speed)
    if args.ctkit:
        site = SiteModel(
            SiteSpec(
                profile=SiteProfile(args.site),
                peak_a=args.peak_a,
                base_a=args.base_a,
                step_a=args.step_a,
                step_at_s=args.step_at_h * SECONDS_PER_HOUR,
                phase_factors=(1.0, 1.0, 1.0) if args.balanced else (1.0, 0.85, 0.7),
                solar_peak_a=args.solar_peak_a,
                noise_a=args.noise_a,
                seed=args.seed,
            )
        )

        def site_values() -> Mapping[Quantity, float]:
            return clamp_values(site.phase_currents_a(clock()))

        return SimulatedModbusDevice(
            device_id=args.address,
            profile=CT_KIT_PROFILES[args.ctkit_profile],
            source=site_values,
            name="Sense CT kit",
        )
    connector = SimConnector(clock)
    spec = EvSpec(phases=args.ev_phases, onboard_max_a=args.ev_max_a, response_delay_s=0.0)
    connector.plug_in(EvModel(spec, soc=args.soc, now_s=clock()))
    await connector.close_contactor()
    await connector.offer_current_a(args.offered_a)

    def ev_values() -> Mapping[Quantity, float]:
        return meter_values(connector.meter_reading())

    profile = METER_PROFILES[args.meter_profile]
    return SimulatedModbusDevice(
        device_id=args.address, profile=profile, source=ev_values, name="socket meter"
    )


async def serve(args: argparse.Namespace) -> None:
    """Serve the device `args` describe until SIGINT or SIGTERM."""
    device = await _build_device(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ModbusSimServer([device]) as server:
        if args.pty:
            path = await server.start_pty()
            where: dict[str, str | int] = {"endpoint": "pty", "port": path}
        else:
            host, _, port = args.tcp.rpartition(":")
            bound = await server.start_tcp(host, int(port))
            where = {"endpoint": "tcp", "host": host, "port": bound}
        print(json.dumps({"device": device.name, "address": device.device_id, **where}))
        if args.fault:
            print(answer(f"fault {args.fault}", [device]))
        sys.stdout.flush()
        if args.commands:
            commands = asyncio.create_task(read_commands([device], _say))
            await stop.wait()
            commands.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await commands
        else:
            await stop.wait()


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m hw.sim.modbus_server`."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # a simulator's own noise
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
