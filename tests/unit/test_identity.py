"""protos/identity.py: the io7 identity URIs, table-driven (named rows)."""

from __future__ import annotations

import pytest

from agent.configtable import ID_RE
from protos.identity import (
    NAME_RE,
    Identity,
    IdentityError,
    Kind,
    Role,
    authorise_admin,
    authorise_hello,
    charger,
    expect_site,
    operator,
    parse_identity,
    peer_certificate,
    server_name,
)

GOOD = {
    "charger": ("io7://garage/charger/io7-01", charger("garage", "io7-01")),
    "charger with dots and underscores": ("io7://a1/charger/A.b_c-9",
                                          charger("a1", "A.b_c-9")),
    "installer": ("io7://garage-west/operator/alice?role=installer",
                  operator("garage-west", "alice", Role.INSTALLER)),
    "viewer": ("io7://garage/operator/bob?role=viewer", operator("garage", "bob", Role.VIEWER)),
}

BAD = {
    "other scheme": ("https://garage/charger/io7-01", "not an io7 identity"),
    "no name": ("io7://garage/charger/", "must be 1-64"),
    "extra path": ("io7://garage/charger/a/b", "not an io7 identity"),
    "unknown kind": ("io7://garage/master/m1", "unknown kind 'master'"),
    "upper-case site": ("io7://Garage/charger/x", "not one DNS label"),
    "site with a dot": ("io7://gar.age/charger/x", "not one DNS label"),
    "site ending in a hyphen": ("io7://garage-/charger/x", "not one DNS label"),
    "dot-dot name (escapes the PKI folder)": ("io7://garage/charger/..", "not only dots"),
    "dot name": ("io7://garage/operator/.?role=viewer", "not only dots"),
    "name too long": ("io7://garage/charger/" + "x" * 65, "must be 1-64"),
    "space in name": ("io7://garage/charger/io7 01", "must be 1-64"),
    "operator without role": ("io7://garage/operator/alice", "needs a role"),
    "charger with role": ("io7://garage/charger/c1?role=installer", "takes no role"),
    "unknown role": ("io7://garage/operator/alice?role=admin", "role=installer or role=viewer"),
    "other query": ("io7://garage/operator/alice?name=x", "role=installer or role=viewer"),
    "fragment": ("io7://garage/charger/c1#x", "not an io7 identity"),
}


@pytest.mark.parametrize(("uri", "identity"), GOOD.values(), ids=GOOD.keys())
def test_good_uris_round_trip(uri: str, identity: Identity) -> None:
    assert parse_identity(uri) == identity
    assert identity.uri == uri == str(identity)


@pytest.mark.parametrize(("uri", "message"), BAD.values(), ids=BAD.keys())
def test_malformed_uris_are_refused_saying_why(uri: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        parse_identity(uri)


def test_names_use_the_charger_id_characters() -> None:
    assert NAME_RE.pattern == ID_RE.pattern


def test_an_identity_cannot_be_built_invalid() -> None:
    with pytest.raises(IdentityError, match="needs a role"):
        Identity(site="garage", kind=Kind.OPERATOR, name="alice")


def test_installer_may_view_and_viewer_may_not_install() -> None:
    assert Role.INSTALLER.permits(Role.INSTALLER)
    assert Role.INSTALLER.permits(Role.VIEWER)
    assert Role.VIEWER.permits(Role.VIEWER)
    assert not Role.VIEWER.permits(Role.INSTALLER)


def test_server_name_and_site_check() -> None:
    assert server_name("garage") == "chargers.garage.io7.internal"
    with pytest.raises(IdentityError):
        server_name("bad.site")
    c = charger("other", "io7-01")
    with pytest.raises(IdentityError, match="belongs to site 'other', not 'garage'"):
        expect_site(c, "garage")
    assert expect_site(c, "other") is c


def test_a_plaintext_peer_has_no_certificate() -> None:
    with pytest.raises(IdentityError, match="no certificate"):
        peer_certificate({})
    with pytest.raises(IdentityError, match="cannot be read"):
        peer_certificate({"x509_pem_cert": [b"-----BEGIN CERTIFICATE-----\nxx\n"]})


def test_only_charger_id_may_say_hello_as_id() -> None:
    authorise_hello(charger("garage", "io7-01"), "io7-01")
    with pytest.raises(IdentityError, match="io7-01 cannot say Hello as charger 'io7-02'"):
        authorise_hello(charger("garage", "io7-01"), "io7-02")
    with pytest.raises(IdentityError, match="is not a charger"):
        authorise_hello(operator("garage", "io7-01", Role.INSTALLER), "io7-01")


ADMIN = {
    "viewer reads": (operator("g", "bob", Role.VIEWER), Role.VIEWER, None),
    "installer reads": (operator("g", "al", Role.INSTALLER), Role.VIEWER, None),
    "installer sets the limit": (operator("g", "al", Role.INSTALLER), Role.INSTALLER, None),
    "viewer cannot set the limit": (operator("g", "bob", Role.VIEWER), Role.INSTALLER,
                                    "may not SetGroupLimit: .* role installer"),
    "a charger is no operator": (charger("g", "io7-01"), Role.VIEWER,
                                 "may not SetGroupLimit: .* role viewer"),
}


@pytest.mark.parametrize(("who", "needed", "refusal"), ADMIN.values(), ids=ADMIN.keys())
def test_admin_calls_by_role(who: Identity, needed: Role, refusal: str | None) -> None:
    if refusal is None:
        authorise_admin(who, needed, "SetGroupLimit")
    else:
        with pytest.raises(IdentityError, match=refusal):
            authorise_admin(who, needed, "SetGroupLimit")
