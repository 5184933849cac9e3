"""The master's and the agent's [tls] tables (issue 11 §2): no silent plaintext, one-line
errors naming the key and the file, closed membership by default with TLS, and the
files checked at start with io7-pki's real certificates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.errors import ConfigError as AgentConfigError
from agent.linktls import link_tls
from master.config import load_master_config
from master.errors import ConfigError
from master.tlsconfig import load_server_tls
from protos.identity import Kind
from tests.tlssupport import make_site

BASE = """
[master]
state_db = "members.sqlite3"
[group]
name = "garage"
limit_a = 60
"""
AGENT = """
[charger]
id = "io7-01"
group = "garage"
current_limit_a = 32
[connectors.1]
wiring = ["L1", "L2", "L3"]
[master]
address = "127.0.0.1:50051"
"""


def master(tmp_path: Path, tls: str) -> Path:
    path = tmp_path / "master.toml"
    path.write_text(BASE + tls)
    return path


@pytest.mark.parametrize(("tls", "key", "says"), [
    ("", "tls", "io7-pki issue charger ID"),
    ("[tls]\n", "tls.dir", "plaintext = true for a test bench"),
    ('[tls]\nplaintext = true\ndir = "x"', "tls.dir", "turns TLS off"),
    ("[tls]\nplaintext = 1", "tls.plaintext", "true or false"),
    ('[tls]\ndir = "x"\ncert = "y"', "tls.cert", "unknown key"),
], ids=["no-tls", "no-dir", "both", "not-bool", "typo"])
def test_a_bad_tls_table_says_what_to_do(tmp_path: Path, tls: str, key: str,
                                          says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_master_config(master(tmp_path, tls))
    assert err.value.key == key and says in str(err.value)
    assert "\n" not in str(err.value)


def test_closed_by_default_with_tls_and_open_in_plaintext(tmp_path: Path) -> None:
    tls = load_master_config(master(tmp_path, '[tls]\ndir = "tls"'))
    assert tls.closed is True and tls.tls is not None
    assert tls.tls.dir == tmp_path / "tls" and tls.tls.crl == tmp_path / "tls" / "crl.pem"
    plain = load_master_config(master(tmp_path, "[tls]\nplaintext = true"))
    assert plain.closed is False and plain.tls is None
    explicit = load_master_config(master(
        tmp_path, '[tls]\ndir = "/etc/io7/tls"\ncrl = "/etc/io7/site.crl"'))
    assert explicit.tls is not None and explicit.tls.crl == Path("/etc/io7/site.crl")


def test_the_files_load_at_start_or_name_the_key(tmp_path: Path) -> None:
    pki = make_site(tmp_path / "pki")
    folder = pki.identity_folder(Kind.CHARGER, "io7-01")
    now = dt.datetime.now(dt.UTC)
    config = load_master_config(master(
        tmp_path, f'[tls]\ndir = "{folder}"\ncrl = "{pki.crl}"'))
    assert config.tls is not None
    loaded, expiry = load_server_tls(config.tls, file=config.file, now=now)
    assert loaded.site == "garage" and expiry is None
    # The default CRL (crl.pem in the folder) was never copied there: refused.
    missing = load_master_config(master(tmp_path, f'[tls]\ndir = "{folder}"'))
    assert missing.tls is not None
    with pytest.raises(ConfigError) as err:
        load_server_tls(missing.tls, file=missing.file, now=now)
    assert err.value.key == "tls.crl" and "crl.pem" in str(err.value)
    # An operator's folder cannot serve.
    op = load_master_config(master(tmp_path, f'[tls]\ndir = "{pki.identity_folder(Kind.OPERATOR, "alice")}"\ncrl = "{pki.crl}"'))  # noqa: E501
    assert op.tls is not None
    with pytest.raises(ConfigError, match="operator's certificate") as err:
        load_server_tls(op.tls, file=op.file, now=now)
    assert err.value.key == "tls.dir"
    (folder / "key.pem").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        load_server_tls(config.tls, file=config.file, now=now)
    assert err.value.key == "tls.dir"


def test_the_agent_needs_tls_with_a_master_and_its_own_certificate(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT)
    with pytest.raises(AgentConfigError, match="io7-pki issue charger ID") as err:
        load_agent_config(path)
    assert err.value.key == "tls"
    pki = make_site(tmp_path / "pki")
    now = dt.datetime.now(dt.UTC)
    path.write_text(AGENT + f'[tls]\ndir = "{pki.identity_folder(Kind.CHARGER, "io7-01")}"')
    material = link_tls(load_agent_config(path), now=now)
    assert material is not None and material.identity.name == "io7-01"
    path.write_text(AGENT + f'[tls]\ndir = "{pki.identity_folder(Kind.CHARGER, "io7-02")}"')
    with pytest.raises(AgentConfigError, match="not this charger") as err:
        link_tls(load_agent_config(path), now=now)
    assert err.value.key == "tls.dir"
    path.write_text(AGENT + "[tls]\nplaintext = true")
    assert link_tls(load_agent_config(path), now=now) is None
