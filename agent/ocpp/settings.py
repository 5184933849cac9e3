"""The back office connection in agent.toml: the [ocpp] table, read into `OcppSettings`.

The OCPP side owns its settings: agent.config reads the file and hands this module the
[ocpp] table; agent.ocpp.connection and the sessions take the result. A url that does not
fit the security profile is refused here and for `--csms-url` alike (`ocpp_url_problem`),
and so are Basic auth keys that are placeholders or guessable (agent.ocpp.keyvalues).

    [ocpp]                        # the back office (CSMS), OCPP 1.6J; absent: none
    enabled = true                # default false
    url = "wss://csms.example.com/ocpp"  # required: ws:// or wss://; OCPP-J appends the
                                  # charge point id to the path (--csms-url overrides)
    charge_point_id = "io7-garage-01"  # default: the [charger] id
    security_profile = 2          # 0 none | 1 HTTP Basic auth over ws:// | 2 Basic auth
                                  # over wss:// | 3 TLS with the charge point's client
                                  # certificate (OCPP 1.6 security whitepaper ed. 2)
    authorization_key = "..."     # profiles 1, 2: the Basic auth password, 16-40
                                  # printable ASCII characters (username = the id), random:
                                  # placeholders and guessable keys are refused
    ca_file = "csms-ca.pem"       # wss://: the CA that signed the CSMS's certificate;
                                  # default: the system's CAs
    client_cert = "cp-cert.pem"   # wss://, required by profile 3: the charge point's
    client_key = "cp-key.pem"     # certificate (CN = charge_point_id) and its key (0600);
                                  # one the CSMS installs (CertificateSigned) wins
    cpo_name = "Example CPO"      # optional: O of the CSRs (SignCertificate)
    serial_number = "..."         # optional: BootNotification chargePointSerialNumber
    auth_mode = "csms"            # none | local_list | csms (manual 6.5); default none
    free_id_tag = "io7-garage-01" # auth_mode none: the idTag of plug-in transactions,
                                  # 1-20 printable ASCII; default the first 20 characters
                                  # of charge_point_id
    local_list = ["04A1B2C3"]     # RFID whitelist (upper-case hex UIDs, 1-20 characters)
                                  # installed while the CSMS has never sent a local list
    [ocpp.uk_default]             # manual 6.6 UK default profile; absent: disabled
    enabled = false               # default false
    tz = "Europe/London"          # the no-charging periods' time zone
    no_charging_periods = [["08:00", "11:00"], ["16:00", "22:00"]]  # at most 2
    max_random_delay_s = 600      # 0-1800 s
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from agent.configtable import ID_RE, AgentTable
from agent.errors import ConfigError
from agent.ocpp.auth import AuthMode, check_id_tag
from agent.ocpp.certstore import client_pair_problem
from agent.ocpp.keyvalues import HOW_TO_FIX, weak_key_problem
from agent.ocpp.ukdefault import UkDefaultSettings, uk_default_from_table

OCPP_SECURITY_PROFILES = (0, 1, 2, 3)  # security whitepaper ed. 2
AUTHORIZATION_KEY_CHARS = (16, 40)  # OCPP passwordString: 16-40 characters
SERIAL_NUMBER_MAX = 25  # BootNotification chargePointSerialNumber: CiString25
CPO_NAME_MAX = 64  # X.520 organizationName: at most 64 characters
ID_TAG_MAX = 20  # OCPP 1.6 IdToken: CiString20


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppSettings:
    """The back office connection ([ocpp]); agent.ocpp.connection uses it."""

    url: str  # without the charge point id
    charge_point_id: str
    security_profile: int = 0
    authorization_key: str | None = None  # profiles 1, 2; a key the CSMS sets wins
    ca_file: Path | None = None  # wss://; None: the system's CAs
    client_cert: Path | None = None  # wss://; profile 3 (agent.ocpp.certstore)
    client_key: Path | None = None
    cpo_name: str | None = None  # O of the CSRs
    serial_number: str | None = None
    auth_mode: AuthMode = AuthMode.NONE
    free_id_tag: str = "io7"  # the loader defaults it to the charge point id
    local_list: tuple[str, ...] = ()
    uk_default: UkDefaultSettings = field(default_factory=UkDefaultSettings)


def read_ocpp(t: AgentTable, charger_id: str) -> OcppSettings | None:
    """The [ocpp] table: its settings, or None when it is absent or not enabled.
    ConfigError names the key of the first bad value."""
    if not t.boolean("enabled", False):
        t.skip_rest()
        return None
    profile = t.integer("security_profile", 0, lo=0, hi=max(OCPP_SECURITY_PROFILES))
    url = t.string("url")
    problem = ocpp_url_problem(url, profile)
    if problem:
        raise t.error("url", problem)
    cp_id = t.string("charge_point_id", charger_id)
    if not ID_RE.fullmatch(cp_id):
        raise t.error("charge_point_id", f"{cp_id!r}: use 1-64 letters, digits, '.', '_', "
                      "'-' (it becomes part of the URL and the Basic auth username)")
    key = t.raw("authorization_key", None)
    lo, hi = AUTHORIZATION_KEY_CHARS
    if profile in (0, 3) and key is not None:
        raise t.error("authorization_key", "is only sent with security_profile 1 or 2: "
                      "set the profile, or remove the key")
    if profile in (1, 2) and not (isinstance(key, str) and lo <= len(key) <= hi
                            and all(" " <= c <= "~" for c in key)):
        raise t.error("authorization_key", f"security_profile {profile} needs the Basic "
                      f"auth password: {lo}-{hi} printable ASCII characters")
    weak = weak_key_problem(key.encode()) if isinstance(key, str) and profile in (1, 2) \
        else None
    if weak is not None:
        raise t.error("authorization_key", f"{weak}: {HOW_TO_FIX}")
    ca_file = None
    if t.raw("ca_file", None) is not None:
        if not url.startswith("wss://"):
            raise t.error("ca_file", "is only used with a wss:// url")
        ca_file = Path(t.string("ca_file"))
        ca_file = ca_file if ca_file.is_absolute() else t.file.parent / ca_file
        if not ca_file.is_file():
            raise t.error("ca_file", f"no such file: {ca_file}")
    client_cert, client_key = _client_pair(t, url, profile)
    cpo = t.raw("cpo_name", None)
    if cpo is not None and not (isinstance(cpo, str) and 1 <= len(cpo) <= CPO_NAME_MAX):
        raise t.error("cpo_name", f"must be 1-{CPO_NAME_MAX} characters, not {cpo!r}")
    serial = t.raw("serial_number", None)
    if serial is not None and not (isinstance(serial, str)
                                   and 1 <= len(serial) <= SERIAL_NUMBER_MAX):
        raise t.error("serial_number", f"must be 1-{SERIAL_NUMBER_MAX} characters, "
                      f"not {serial!r}")
    mode, free, tags = read_authorisation(t, cp_id)
    uk = read_uk_default(t)
    t.done()
    return OcppSettings(url=url, charge_point_id=cp_id, security_profile=profile,
                        authorization_key=key, ca_file=ca_file, client_cert=client_cert,
                        client_key=client_key, cpo_name=cpo, serial_number=serial,
                        auth_mode=mode, free_id_tag=free, local_list=tuple(tags),
                        uk_default=uk)


def read_authorisation(t: AgentTable, cp_id: str) -> tuple[AuthMode, str, list[str]]:
    """[ocpp] auth_mode, free_id_tag and local_list (manual 6.5); the web UI checks its
    changes with it too, while [ocpp] is off (master/web/chargersettings.py)."""
    mode = AuthMode(t.string("auth_mode", AuthMode.NONE.value,
                             allowed=tuple(m.value for m in AuthMode)))
    free = t.string("free_id_tag", cp_id[:ID_TAG_MAX])
    try:
        check_id_tag(free)
    except ValueError as err:
        raise t.error("free_id_tag", str(err)) from None
    tags = t.raw("local_list", [])
    if not isinstance(tags, list):
        raise t.error("local_list", f"must be a list of idTags, not {tags!r}")
    for tag in tags:
        try:
            check_id_tag(tag)
        except ValueError as err:
            raise t.error("local_list", f"{err} (1-{ID_TAG_MAX} printable ASCII characters "
                          "each)") from None
    return mode, free, tags


def read_uk_default(t: AgentTable) -> UkDefaultSettings:
    """[ocpp.uk_default] (manual 6.6); like `read_authorisation`, also the web UI's check."""
    uk_t = t.table("uk_default")
    if uk_t is None:
        return UkDefaultSettings()
    uk = uk_default_from_table(uk_t.data, file=t.file, prefix="ocpp.uk_default")
    uk_t.skip_rest()
    return uk


def _client_pair(t: AgentTable, url: str, profile: int) -> tuple[Path | None, Path | None]:
    """client_cert and client_key: both or neither, wss:// only, required by profile 3,
    readable, each other's, the key 0600."""
    given = {k: t.raw(k, None) is not None for k in ("client_cert", "client_key")}
    if not any(given.values()):
        if profile == 3:
            raise t.error("client_cert", "security_profile 3 needs the charge point's "
                          "certificate: set client_cert and client_key")
        return None, None
    if not all(given.values()):
        missing = next(k for k, v in given.items() if not v)
        raise t.error(missing, "client_cert and client_key go together: set both")
    if not url.startswith("wss://"):
        raise t.error("client_cert", "is only used with a wss:// url")
    paths = []
    for name in ("client_cert", "client_key"):
        path = Path(t.string(name))
        path = path if path.is_absolute() else t.file.parent / path
        if not path.is_file():
            raise t.error(name, f"no such file: {path}")
        paths.append(path)
    problem = client_pair_problem(paths[0], paths[1])
    if problem is not None:
        raise t.error("client_key", problem)
    return paths[0], paths[1]


def ocpp_url_problem(url: str, security_profile: int) -> str | None:
    """What is wrong with a CSMS url for this security profile, None if it fits."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"{url!r}: give ws://host[:port]/path or wss://host[:port]/path"
    if parts.query or parts.fragment or parts.username or port == 0:
        return f"{url!r}: no query, fragment or user; the charge point id is appended"
    if security_profile == 1 and parts.scheme != "ws":
        return "security_profile 1 is Basic auth over ws://: use a ws:// url, or profile 2"
    if security_profile == 2 and parts.scheme != "wss":
        return "security_profile 2 is Basic auth over TLS: use a wss:// url"
    if security_profile == 3 and parts.scheme != "wss":
        return "security_profile 3 is TLS with a client certificate: use a wss:// url"
    return None


def with_url(ocpp: OcppSettings | None, url: str, *, charger_id: str,
             file: Path) -> OcppSettings:
    """`io7-agent --csms-url`: these settings with this back office url (the defaults for
    `charger_id` if [ocpp] was off). ConfigError if the url does not fit the profile."""
    ocpp = ocpp or OcppSettings(url=url, charge_point_id=charger_id,
                                free_id_tag=charger_id[:ID_TAG_MAX])
    problem = ocpp_url_problem(url, ocpp.security_profile)
    if problem:
        raise ConfigError(file=file, key="ocpp.url (--csms-url)", problem=problem)
    tls = url.startswith("wss://")
    return replace(ocpp, url=url, ca_file=ocpp.ca_file if tls else None,
                   client_cert=ocpp.client_cert if tls else None,
                   client_key=ocpp.client_key if tls else None)
