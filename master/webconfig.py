"""io7.toml's [web] table: where io7d serves its UI, REST API and /metrics (issue 14).

    [web]                         # absent: no web interface (io7d as in issue 13)
    listen = "0.0.0.0:8443"       # host:port; port 0 = any free port (tests)
    plaintext = false             # true only on a test bench: HTTP, warned at start
    metrics_token_file = ""       # optional: /metrics then needs this bearer token
    [web.members]                 # optional: each member's UI URL, for "the group pages
    "io7-02" = "https://10.0.0.12:8443"  # are on io7-02"; default: https://<its host in
                                  # [group.members]>:<this charger's web port>

Rules: 1. HTTPS uses this charger's certificate ([tls] dir: cert.pem, key.pem); a
charger without [tls] dir must say `plaintext = true` (no silent downgrade). 2. The
metrics token file is read at start; it must hold one line of at least 16 characters
and be readable by its owner alone (chmod 600, like [mqtt] password_file).
3. Every error is a ConfigError naming io7.toml and the key (`web.listen`).
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from master.errors import ConfigError

DEFAULT_LISTEN = "0.0.0.0:8443"  # 8443: the usual unprivileged HTTPS port
MIN_TOKEN_LEN = 16
KEYS = ("listen", "plaintext", "metrics_token_file", "members")


@dataclass(frozen=True, slots=True)
class WebConfig:
    listen: str = DEFAULT_LISTEN
    plaintext: bool = False
    metrics_token_file: Path | None = None
    metrics_token: str | None = field(default=None, repr=False)  # rule 2
    member_urls: Mapping[str, str] = field(default_factory=dict)  # charger id -> UI URL

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def scheme(self) -> str:
        return "http" if self.plaintext else "https"


def parse_web(path: Path, raw: Any, *, members: Mapping[str, str], has_tls: bool
              ) -> WebConfig | None:
    """The [web] table of `path` (None: absent). Raises ConfigError naming the key."""
    if raw is None:
        return None

    def err(key: str, problem: str) -> ConfigError:
        return ConfigError(file=path, key=f"web.{key}" if key else "web", problem=problem)

    if not isinstance(raw, dict):
        raise err("", "must be a table: [web] with listen = \"0.0.0.0:8443\"")
    for key in raw:
        if key not in KEYS:
            raise err(key, f"unknown key; [web] has {list(KEYS)}")
    listen = raw.get("listen", DEFAULT_LISTEN)
    host, sep, port = listen.rpartition(":") if isinstance(listen, str) else ("", "", "")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise err("listen", f"{listen!r} must be \"host:port\" with a port in 0..65535 "
                  f"(e.g. {DEFAULT_LISTEN!r})")
    plaintext = raw.get("plaintext", False)
    if not isinstance(plaintext, bool):
        raise err("plaintext", f"{plaintext!r} must be true or false")
    if not plaintext and not has_tls:
        raise err("plaintext", "this charger has no [tls] dir, so no certificate to serve "
                  "HTTPS with: set [tls] dir, or plaintext = true on a test bench only")
    token_file, token = _token(path, raw.get("metrics_token_file", ""), err)
    urls = raw.get("members", {})
    if not isinstance(urls, dict):
        raise err("members", "must be a table: charger id -> \"https://host:port\"")
    scheme = "http" if plaintext else "https"
    out: dict[str, str] = {}
    for cid, address in members.items():
        out[cid] = f"{scheme}://{_url_host(address.rpartition(':')[0])}:{port}"
    for cid, url in urls.items():
        if cid not in members:
            raise err(f"members.{cid}", f"is not in [group.members] {sorted(members)}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise err(f"members.{cid}", f"{url!r} must be a URL: \"https://host:port\"")
        out[cid] = url.rstrip("/")
    return WebConfig(listen=listen, plaintext=plaintext, metrics_token_file=token_file,
                     metrics_token=token, member_urls=out)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _token(path: Path, raw: Any, err: Any) -> tuple[Path | None, str | None]:
    if not isinstance(raw, str):
        raise err("metrics_token_file", f"{raw!r} must be a file name (or \"\": no token)")
    if not raw:
        return None, None
    file = Path(raw) if Path(raw).is_absolute() else path.parent / raw
    try:
        mode = file.stat().st_mode
        token = file.read_text().strip()
    except OSError as exc:
        raise err("metrics_token_file", f"cannot read {file} ({exc.strerror or exc}): "
                  "write the bearer token there, or set \"\" for none") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise err("metrics_token_file", f"{file} may be read by others "
                  f"({stat.filemode(mode)}): chmod 600 {file}")
    if len(token) < MIN_TOKEN_LEN or any(ch.isspace() for ch in token):
        raise err("metrics_token_file", f"{file} must hold one token of at least "
                  f"{MIN_TOKEN_LEN} characters, no spaces (e.g. `openssl rand -hex 16`)")
    return file, token
