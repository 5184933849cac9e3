"""The agent's TLS files for AgentLink (agent/link.py rule 5), apart from the link itself
so that a charger without a master (agent-only mode) loads no gRPC (issue 15's memory).

`link_tls` loads them at start and refuses a certificate that is not this charger's own
(ConfigError): the master would refuse every Hello anyway, so say it where the installer
looks first.
"""

from __future__ import annotations

import datetime as dt

import structlog

from agent.audit import PLAINTEXT_WARNING
from agent.config import AgentConfig
from agent.errors import ConfigError
from protos.identity import charger
from protos.tls import TlsError, TlsFiles, TlsMaterial, load_tls, validity_problem


def link_tls(config: AgentConfig, *, now: dt.datetime,
             master_address: str | None = None) -> TlsMaterial | None:
    """This charger's TLS files from [tls] dir (rule 5), None without TLS (agent-only
    mode, or plaintext: warned here). Logs an error when the certificate is not valid at
    `now`. Raises ConfigError (key tls.dir)."""
    log = structlog.get_logger("agent.link").bind(charger_id=config.charger_id)
    folder = config.tls_dir
    if folder is None:
        if master_address or config.master_address:
            log.warning(PLAINTEXT_WARNING)
        return None
    try:
        material = load_tls(TlsFiles.in_folder(folder))
    except TlsError as err:
        raise ConfigError(file=config.file, key="tls.dir", problem=str(err)) from None
    mine = charger(material.site, config.charger_id)
    if material.identity != mine:
        raise ConfigError(file=config.file, key="tls.dir", problem=f"{folder / 'cert.pem'} "
                          f"names {material.identity}, not this charger ({mine}): copy "
                          f"chargers/{config.charger_id}/ from the PKI folder, or fix "
                          "[charger] id")
    expiry = validity_problem(material.cert, now)
    if expiry:
        log.error("this charger's certificate is not valid now: the master will refuse it",
                  problem=expiry)
    return material
