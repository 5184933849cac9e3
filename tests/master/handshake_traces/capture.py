"""Re-capture the real gRPC core output that tests/master/test_handshakelog.py reads.

`.venv/bin/python tests/master/handshake_traces/capture.py [SCENARIO ...]` from the
repository: per scenario, one TLS server as the master runs it (grpc.aio, its options,
protos.tls credentials, GRPC_TRACE=handshaker set before `import grpc`) in its own
process, one client doing the scenario, and the server's whole stderr saved as
`SCENARIO.stderr` here. `client_side.stderr` is a client's own trace (not a server's).
Run it after a grpcio upgrade when tests/e2e/test_mtls.py says the format changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from protos.identity import Kind, server_name  # noqa: E402
from protos.tls import TlsFiles, channel_options, load_tls  # noqa: E402
from tests.tlssupport import make_site  # noqa: E402

SERVER = r"""
import asyncio, os, sys
os.environ["GRPC_TRACE"] = "handshaker"
import grpc
from pathlib import Path
from grpc_health.v1 import health, health_pb2_grpc
from protos.link import MASTER_SERVER_OPTIONS
from protos.tls import TlsFiles, load_tls, server_credentials

async def main():
    timeout = [("grpc.server_handshake_timeout_ms", 1000)] if sys.argv[3] == "short" else []
    server = grpc.aio.server(options=MASTER_SERVER_OPTIONS + timeout)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    tls = load_tls(TlsFiles.in_folder(Path(sys.argv[1])))
    port = server.add_secure_port(sys.argv[2] + ":0", server_credentials(tls))
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.stop(0)

asyncio.run(main())
"""
CLIENT = r"""
import os, sys
os.environ["GRPC_TRACE"] = "handshaker"
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
ca = open(sys.argv[2], "rb").read()
channel = grpc.secure_channel(sys.argv[1], grpc.ssl_channel_credentials(ca),
                              options=[("grpc.ssl_target_name_override", sys.argv[3])])
try:
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
except grpc.RpcError as e:
    print(e.code())
"""


def main(names: list[str]) -> None:
    pki_dir = Path(tempfile.mkdtemp())
    now = dt.datetime.now(dt.UTC)
    pki = make_site(pki_dir / "site")
    make_site(pki_dir / "other")
    pki.issue(Kind.CHARGER, "io7-expired", now=now - dt.timedelta(days=400), days=30,
              force=True)
    pki.issue(Kind.CHARGER, "io7-future", now=now + dt.timedelta(days=400), days=30,
              force=True)
    site = pki_dir / "site/chargers/io7-01"
    other = pki_dir / "other/chargers/io7-01"
    ca = (site / "ca.pem").read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    env["PYTHONPATH"] = str(ROOT)
    address = ""

    def call(credentials: grpc.ChannelCredentials | None) -> str:
        async def go() -> str:
            channel = (grpc.aio.insecure_channel(address) if credentials is None else
                       grpc.aio.secure_channel(address, credentials,
                                               options=channel_options("garage")))
            async with channel:
                try:
                    await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[no-untyped-call]
                        health_pb2.HealthCheckRequest(), timeout=3)
                except grpc.aio.AioRpcError as err:
                    return str(err.code())
                return "ok"
        return asyncio.run(go())

    def mtls(folder: Path) -> str:
        m = load_tls(TlsFiles.in_folder(folder))  # trusts the site's CA, presents `folder`'s
        return call(grpc.ssl_channel_credentials(ca, m.key_pem, m.cert_pem))

    def self_signed() -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mallory")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        return call(grpc.ssl_channel_credentials(ca, key_pem, cert_pem))

    def raw(data: bytes, wait_s: float = 3.0) -> str:
        host, _, port = address.rpartition(":")
        with socket.create_connection((host, int(port))) as s:
            s.sendall(data)
            s.settimeout(wait_s)
            try:
                return repr(s.recv(100))
            except OSError as exc:
                return repr(exc)

    def tls_then_reset() -> str:
        host, _, port = address.rpartition(":")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        out = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), out)
        with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the ServerHello
            obj.do_handshake()
        with socket.create_connection((host, int(port))) as s:
            s.sendall(out.read())  # a ClientHello, then a close with unread data: a reset
            time.sleep(0.3)
        return "reset"

    def client_side() -> str:
        with (HERE / "client_side.stderr").open("wb") as err:
            done = subprocess.run([sys.executable, "-c", CLIENT, address,
                                   str(other / "ca.pem"), server_name("garage")],
                                  stdout=subprocess.PIPE, stderr=err, env=env, check=False)
        return done.stdout.decode().strip()

    scenarios: dict[str, Callable[[], str]] = {
        "good": lambda: mtls(site),
        "no_certificate": lambda: call(grpc.ssl_channel_credentials(ca)),
        "another_ca": lambda: mtls(other),
        "ipv6_another_ca": lambda: mtls(other),
        "expired": lambda: mtls(pki_dir / "site/chargers/io7-expired"),
        "not_yet_valid": lambda: mtls(pki_dir / "site/chargers/io7-future"),
        "self_signed": self_signed,  # an error with no short reason: its own words
        "plaintext_grpc": lambda: call(None),
        "http_get": lambda: raw(b"GET / HTTP/1.1\r\nHost: io7\r\n\r\n"),
        "garbage": lambda: raw(b"\x00\x01\x02hello garbage\n" * 4),
        "connect_close": lambda: raw(b"", wait_s=1.0),
        "tls_reset": tls_then_reset,
        "client_refuses_server": client_side,  # also writes client_side.stderr
        "silent_timeout": lambda: raw(b"", wait_s=2.5),
    }
    for name in names or list(scenarios):
        host = "[::1]" if name.startswith("ipv6") else "127.0.0.1"
        with (HERE / f"{name}.stderr").open("wb") as err:
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(site), host,
                 "short" if name == "silent_timeout" else "default"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env)
            assert server.stdout is not None and server.stdin is not None
            address = f"{host}:{int(server.stdout.readline())}"
            said = scenarios[name]()
            time.sleep(0.5)  # the server's last records
            server.stdin.write(b"\n")
            server.stdin.flush()
            server.wait(10)
        print(name, said)


if __name__ == "__main__":
    main(sys.argv[1:])
