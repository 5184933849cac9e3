"""io7.toml's [web] table (master/webconfig.py) and the web server's bind (server.py):
every error is a ConfigError naming io7.toml and the key."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from master.errors import ConfigError
from master.io7dconfig import parse
from master.web.server import bind
from master.webconfig import DEFAULT_LISTEN, WebConfig
from tests.web.support import ALL_PHASES, io7_toml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "io7d"
PATH = DEPLOY / "io7-01.toml"


def _example(web: Any) -> dict[str, Any]:
    with PATH.open("rb") as f:
        data = tomllib.load(f)
    data.pop("web", None)
    if web is not None:
        data["web"] = web
    return data


def test_no_web_table_serves_nothing() -> None:
    assert parse(PATH, _example(None)).web is None


def test_defaults_and_member_urls() -> None:
    web = parse(PATH, _example({})).web
    assert web is not None
    assert web.listen == DEFAULT_LISTEN and not web.plaintext and web.metrics_token is None
    # each member's UI: its [group.members] host, this charger's web port
    assert web.member_urls["io7-02"] == "https://192.168.10.12:8443"
    given = parse(PATH, _example({"listen": "127.0.0.1:0",
                                  "members": {"io7-02": "https://example.test:9443/"}})).web
    assert given is not None and given.port == 0
    assert given.member_urls["io7-02"] == "https://example.test:9443"


def test_metrics_token_file_is_read(tmp_path: Path) -> None:
    token = tmp_path / "metrics.token"
    token.write_text("0123456789abcdef0123\n")
    token.chmod(0o600)
    web = parse(PATH, _example({"metrics_token_file": str(token)})).web
    assert web is not None and web.metrics_token == "0123456789abcdef0123"


@pytest.mark.parametrize(("web", "key", "says"), [
    ("on", "web", "must be a table"),
    ({"port": 8443}, "web.port", "unknown key"),
    ({"listen": "8443"}, "web.listen", "host:port"),
    ({"listen": "0.0.0.0:70000"}, "web.listen", "0..65535"),
    ({"plaintext": "yes"}, "web.plaintext", "true or false"),
    ({"metrics_token_file": "/nonexistent/token"}, "web.metrics_token_file", "cannot read"),
    ({"metrics_token_file": 5}, "web.metrics_token_file", "file name"),
    ({"members": {"io7-09": "https://x:1"}}, "web.members.io7-09", "not in [group.members]"),
    ({"members": {"io7-02": "x:1"}}, "web.members.io7-02", "must be a URL"),
])
def test_bad_values_name_io7_toml_and_the_key(web: Any, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(PATH, _example(web))
    assert err.value.key == key and err.value.file == PATH
    assert says in err.value.problem
    assert "\n" not in str(err.value)


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "t"
    token.write_text("short\n")
    token.chmod(0o600)
    with pytest.raises(ConfigError, match="at least 16"):
        parse(PATH, _example({"metrics_token_file": str(token)}))


def test_https_needs_a_certificate() -> None:
    data = _example({})
    data["tls"] = {"plaintext": True}
    data["group"]["members"] = {"io7-01": "192.168.10.11:50051"}  # alone: plaintext allowed
    data["group"].pop("ct_charger", None)
    data["group"]["mode"] = "static"
    data.pop("ct", None)
    with pytest.raises(ConfigError) as err:
        parse(PATH, data)
    assert err.value.key == "web.plaintext" and "no [tls] dir" in err.value.problem


def test_a_taken_port_is_one_line_naming_web_listen() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = parse(PATH, _example({"listen": f"127.0.0.1:{port}"}))
        assert config.web is not None
        with pytest.raises(ConfigError) as err:
            bind(config, config.web)
    message = str(err.value)
    assert err.value.key == "web.listen" and "\n" not in message
    assert f"127.0.0.1:{port}" in message and "choose another port" in message


def test_port_zero_binds_a_free_port() -> None:
    config = parse(PATH, _example({"listen": "127.0.0.1:0"}))
    assert isinstance(config.web, WebConfig)
    with bind(config, config.web) as sock:
        assert sock.getsockname()[1] > 0


def test_io7d_with_its_web_port_taken_exits_2_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))
        grpc_port = free.getsockname()[1]
        free.close()
        path = tmp_path / "io7.toml"
        web = f'[web]\nlisten = "127.0.0.1:{taken.getsockname()[1]}"\nplaintext = true\n'
        path.write_text(io7_toml(state=tmp_path / "state", wiring=(ALL_PHASES,),
                                 group="limit_a = 32",
                                 members=f'"io7-01" = "127.0.0.1:{grpc_port}"',
                                 more=web + '[sim]\nevs = "none"\n'))
        done = subprocess.run([sys.executable, "-m", "master.io7d", "--config", str(path)],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("io7d: ") and "web.listen" in last and "io7.toml" in last
    assert "Traceback" not in done.stderr


def test_a_token_file_others_may_read_is_refused(tmp_path: Path) -> None:
    """Review finding 10: like the MQTT password file, the metrics bearer token must be
    readable by its owner alone."""
    token = tmp_path / "metrics.token"
    token.write_text("0123456789abcdef0123\n")
    token.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        parse(PATH, _example({"metrics_token_file": str(token)}))
    assert err.value.key == "web.metrics_token_file"
    assert f"chmod 600 {token}" in err.value.problem and "\n" not in str(err.value)
