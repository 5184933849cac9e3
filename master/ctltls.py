"""io7ctl's certificate: which files, and the channel they open (issue 11 §2).

The first that applies:
  --pki-dir DIR            an operator's folder made by `io7-pki issue operator NAME`
                           (ca.pem, cert.pem, key.pem)
  --ca/--cert/--key        the three files named one by one (all three)
  make run's run file      the installer certificate the car park made (master/runfile.py)
  none                     plaintext: only a master with `[tls] plaintext = true` answers

1. io7ctl trusts only the site CA in the folder and checks the master as the site's
   server name (protos/tls.py rule 2), so a fake master is refused by the handshake.
2. A bad file is a usage error in one line (protos/tls.py rule 4 says which and why).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc

from master import runfile
from protos.tls import (
    TlsError,
    TlsFiles,
    TlsMaterial,
    channel_credentials,
    channel_options,
    load_tls,
)

NO_CERTIFICATE = "no certificate (plaintext)"
_STATUS_BYTES = 4 * 1024 * 1024  # protos/link.py MAX_STATUS_BYTES: gRPC's default


class CtlTlsError(ValueError):
    """A usage problem with the certificate options or files; one line."""


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--pki-dir", type=Path, metavar="DIR",
                    help="your operator folder from io7-pki (ca.pem, cert.pem, key.pem); "
                    "default: make run's, else none (plaintext)")
    ap.add_argument("--ca", type=Path, help="the site CA certificate (with --cert, --key)")
    ap.add_argument("--cert", type=Path, help="your operator certificate")
    ap.add_argument("--key", type=Path, help="its private key (chmod 600)")


def client_tls(args: argparse.Namespace, cwd: Path) -> tuple[TlsMaterial | None, str]:
    """The certificate io7ctl presents, and where it came from (said in messages).
    Raises CtlTlsError."""
    files: TlsFiles | None = None
    named = [args.ca, args.cert, args.key]
    if args.pki_dir is not None:
        if any(n is not None for n in named):
            raise CtlTlsError("give --pki-dir or --ca/--cert/--key, not both")
        files, source = TlsFiles.in_folder(args.pki_dir), f"--pki-dir {args.pki_dir}"
    elif any(n is not None for n in named):
        if any(n is None for n in named):
            raise CtlTlsError("--ca, --cert and --key go together: give all three, or "
                              "--pki-dir DIR")
        files, source = TlsFiles(ca=args.ca, cert=args.cert, key=args.key), "--cert"
    else:
        path = runfile.find(cwd)
        try:
            operator = runfile.read(path).operator if path is not None else ""
        except runfile.RunFileError:
            operator = ""  # the targets say what is wrong with it
        if not operator:
            return None, NO_CERTIFICATE
        files, source = TlsFiles.in_folder(Path(operator)), f"make run's ({path})"
    try:
        return load_tls(files), source
    except TlsError as err:
        raise CtlTlsError(str(err)) from None


def open_channel(address: str, material: TlsMaterial | None) -> grpc.aio.Channel:
    """A channel to the master: mutual TLS with `material` (rule 1), else plaintext."""
    options = [("grpc.max_receive_message_length", _STATUS_BYTES)]
    if material is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, channel_credentials(material),
                                   options=[*options, *channel_options(material.site)])


def unavailable_hint(details: str, source: str) -> str:
    """What UNAVAILABLE most likely means when the master's host answered (the TLS
    handshake failed), "" when nobody listens."""
    if "refused" in details.lower():
        return ""
    if source == NO_CERTIFICATE:
        return ("a master with TLS needs your certificate: --pki-dir DIR (your folder from "
                "io7-pki issue operator NAME)")
    return (f"the master refused this certificate (expired, revoked, another site's) or it "
            f"is not this site's master: check --pki-dir (certificate from {source})")
