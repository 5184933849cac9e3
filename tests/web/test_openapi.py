"""The REST API's OpenAPI 3 document (issue 14 §2): built from the same typed routes
io7d serves, it validates against the OpenAPI 3.x schema (openapi-spec-validator), and
every /api route but login declares how to authenticate. That it is served without a
login over HTTPS is tested on a real io7d group (test_api_group.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from master.io7dconfig import load_io7_config
from master.web.accounts import Accounts
from master.web.app import build_app
from master.web.station import Station

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "io7d" / "io7-01.toml"
OPEN = {"/api/login"}  # the only route without a session


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    station = Station(load_io7_config(EXAMPLE), agent=None,  # type: ignore[arg-type]
                      accounts=Accounts(tmp / "users.json", {}), web_urls={})
    return build_app(station).openapi()


def test_the_document_validates_as_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")
    assert {"/api/login", "/api/logout", "/api/me", "/api/password", "/api/group",
            "/api/group/limit", "/api/group/rebuild", "/api/election",
            "/api/security-log"} <= set(document["paths"])


def test_every_api_route_but_login_needs_a_session(document: dict[str, Any]) -> None:
    schemes = set(document["components"]["securitySchemes"])
    assert {"HTTPBearer", "APIKeyCookie"} <= schemes
    for path, ops in document["paths"].items():
        if not path.startswith("/api/") or path in OPEN:
            continue
        for method, op in ops.items():
            given = {name for requirement in op.get("security", []) for name in requirement}
            assert given & schemes, f"{method.upper()} {path} declares no authentication"
