"""This charger's own pages as a REST API (issue 14 §1-2, manual ch. 6): general
information, installer settings, authorisation with the local RFID list, smart charging
and the CSMS connection. Served by every member (not only the leader).

Settings are named by their io7.toml keys (master/web/chargersettings.py): GET
/api/charger/settings lists each with its page, label, unit, range and whether it
applies live; PUT takes {"changes": {key: value}} (null = back to the default). A change
is checked by the TOML loader itself (400 with its message word for word, nothing
written), written to io7.toml atomically with its comments kept (master/web/tomlwrite.py),
applied live where safe (the Charger Current Limit: the agent's limit applier and its
Hello to the master) and otherwise answered with `restart_needed` and the reason.

The local RFID list (manual 6.5, "Local RFID authorisation"): the whitelist is io7.toml's
[ocpp] local_list, the config tags agent/ocpp/authlists.py installs as the OCPP local
list while the back office has never sent one (its rule 2). We edit that key, not the
SQLite list, because: the file stays the one source of truth the installer backs up and
the loader checks (the same idTag rule and message), a lost state folder does not lose
the whitelist, and the CSMS's SendLocalList keeps priority exactly as today. A change is
applied at once to the agent's store (`seed_local_list`) when OCPP runs; once the CSMS
owns the list, changes here are refused (409: they would be ignored).

Every handler runs on io7d's event loop (async def): the agent and its SQLite stores
belong to that thread. The loader's checks (cs.load, cs.plan_change: pure, TOML text in,
no SQLite, no agent) run in a worker thread, so a large file never stalls the loop (the
agent's lease watchdog and Raft ticks share it); an import holds at most
LOCAL_LIST_MAX tags and is merged in one pass (review: 4 000 tags blocked the loop
~4.6 s). The import takes text/csv or JSON only (415 otherwise): a cross-site form
(text/plain, no preflight) cannot send it. Every change, and every refused one, is a
security-log entry with the web user (deps.record): settings_changed /
settings_refused, rfid_added / rfid_removed / rfid_imported. The OCPP AuthorizationKey
is written, never shown nor logged.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, JsonValue, ValidationError

from master.errors import ConfigError
from master.io7dconfig import Io7Config
from master.web import chargersettings as cs
from master.web.chargerinfo import ChargerInfo, charger_info
from master.web.deps import User, get_station, installer, record, viewer
from master.web.station import Station
from master.web.tomlwrite import write_atomic

router = APIRouter(prefix="/api/charger", tags=["charger"])
CSV_MAX_BYTES = 256 * 1024  # ~20,000 tags of 12 characters: far above any local list
LOCAL_LIST_MAX = 1000  # OcppStore's LocalAuthListMaxLength (agent/ocpp/store.py)
CSV_TYPES = ("text/csv", "application/json")
REFUSED: dict[int | str, dict[str, Any]] = {
    400: {"description": "refused: the config loader's own message (file, key, allowed "
          "range); nothing was written"}}


class SettingInfo(BaseModel):
    key: str = Field(description="the io7.toml key", examples=["charger.current_limit_a"])
    page: str = Field(description="installer | authorisation | smart_charging | csms")
    label: str
    unit: str
    min: float | None
    max: float | None
    choices: list[JsonValue]
    live: bool = Field(description="applied without a restart")
    restart_why: str = Field(description="why a change waits for a restart (\"\" if live)")
    secret: bool = Field(description="write-only: its value shows as ******** when set")
    value: JsonValue = Field(description="as io7d reads it from io7.toml (defaults filled)")


class SettingsView(BaseModel):
    file: str
    settings: list[SettingInfo]
    pending_restart: dict[str, str] = Field(
        description="keys configured differently from what runs -> why a restart is needed")


class SettingsChange(BaseModel):
    changes: dict[str, JsonValue] = Field(
        min_length=1, description="io7.toml key -> new value (null: back to the default)",
        examples=[{"charger.current_limit_a": 16, "ocpp.uk_default.max_random_delay_s": 900}])


class SettingsResult(BaseModel):
    applied: list[str] = Field(description="keys in force now")
    restart_needed: bool
    restart: dict[str, str] = Field(description="key -> why it waits for a restart")
    unchanged: list[str]
    notes: list[str] = Field(default_factory=list,
                             description="what else was done (the file made owner-only)")


class Csms(BaseModel):
    enabled: bool
    url: str | None
    charge_point_id: str
    security_profile: int = Field(description="in force (the CSMS may have raised it)")
    connection_state: str = Field(description="off | connecting | connected | pending | "
                                  "rejected | accepted | offline | stopped")


class RfidTag(BaseModel):
    id_tag: str = Field(min_length=1, max_length=64, examples=["04A1B2C3D4E5F6"])


class CsvImport(BaseModel):
    csv: str = Field(max_length=CSV_MAX_BYTES)


class RfidList(BaseModel):
    tags: list[str] = Field(description="io7.toml [ocpp] local_list")
    owner: str = Field(description="config: these tags are the local list | csms: the back "
                       "office sent its own list, these are ignored | off: OCPP is off, "
                       "the tags wait for it")
    in_force: list[str] = Field(description="the OCPP local list the agent uses now")
    added: int = 0
    skipped: int = 0


def _lock(request: Request) -> asyncio.Lock:
    """One edit of io7.toml at a time (read, check, write, apply)."""
    lock: asyncio.Lock | None = getattr(request.app.state, "charger_settings_lock", None)
    if lock is None:
        lock = request.app.state.charger_settings_lock = asyncio.Lock()
    return lock


def _now(station: Station) -> dict[str, Any]:
    return cs.running(station.config, station.agent.config.charger_limit_a)


async def _read(station: Station) -> tuple[str, Any, dict[str, Any]]:
    path = station.config.file
    try:
        text, (config, values) = await asyncio.to_thread(_load, path)
    except OSError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{path}: cannot read it "
                            f"({exc.strerror or exc}): check the file and its permissions"
                            ) from None
    except ConfigError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc} (io7.toml was edited by hand "
                            "and does not load: fix that first)") from None
    return text, config, values


def _load(path: Path) -> tuple[str, tuple[Io7Config, dict[str, Any]]]:
    """In a worker thread: the file and what the loader makes of it (pure but slow)."""
    text = path.read_text(encoding="utf-8")
    return text, cs.load(path, text)


@router.get("", response_model=ChargerInfo, summary="General information")
async def general(station: Annotated[Station, Depends(get_station)],
            _: Annotated[User, Depends(viewer)]) -> ChargerInfo:
    return charger_info(station)


@router.get("/settings", response_model=SettingsView, summary="This charger's settings")
async def get_settings(station: Annotated[Station, Depends(get_station)],
                 _: Annotated[User, Depends(viewer)]) -> SettingsView:
    config, values = (await _read(station))[1:]
    shown = cs.shown(values)
    infos = [SettingInfo(key=s.key, page=s.page, label=s.label, unit=s.unit, min=s.lo,
                         max=s.hi, choices=list(s.choices), live=s.live,
                         restart_why="" if s.live else cs.restart_reason(s.key, config),
                         secret=s.secret, value=shown.get(s.key))
             for s in cs.SETTINGS if s.listed]
    return SettingsView(file=str(station.config.file), settings=infos,
                        pending_restart=cs.pending(values, _now(station), config))


@router.put("/settings", response_model=SettingsResult, responses=REFUSED,
            summary="Change settings (installer)")
async def put_settings(body: SettingsChange, request: Request,
                       station: Annotated[Station, Depends(get_station)],
                       user: Annotated[User, Depends(installer)]) -> SettingsResult:
    async with _lock(request):
        text, _, _ = await _read(station)
        path = station.config.file
        try:
            plan = await asyncio.to_thread(cs.plan_change, path, text, body.changes,
                                           _now(station))
        except (ConfigError, cs.SettingsError) as exc:
            record(request, user, "settings_refused",
                   f"{', '.join(sorted(body.changes))}: {exc}")
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        notes = []
        if plan.changed:
            notes = await _write(path, plan.text, plan.after)
        applied = _apply_live(station, plan)
        if plan.changed:
            record(request, user, "settings_changed",
                   "; ".join([_describe(plan, applied), *notes]))
    return SettingsResult(applied=applied, restart_needed=bool(plan.restart),
                          restart=dict(plan.restart),
                          unchanged=sorted(set(body.changes) - set(plan.changed)),
                          notes=notes)


async def _write(path: Path, text: str, values: Any) -> list[str]:
    """Write io7.toml (tomlwrite rule 2); owner-only when it holds a secret (the OCPP
    AuthorizationKey). Returns the notes saying so when that tightened its mode."""
    private = any(values.get(s.key) for s in cs.SETTINGS if s.secret)
    try:
        old = await asyncio.to_thread(write_atomic, path, text, private=private)
    except OSError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"{path}: cannot write "
                            f"it ({exc.strerror or exc}); nothing was changed: check the "
                            "folder's permissions and free space") from None
    if private and old & 0o077:
        return [f"{path.name} holds the OCPP AuthorizationKey: now readable by its owner "
                f"alone ({old & 0o700:04o}; it was {old:04o})"]
    return []


def _apply_live(station: Station, plan: cs.Plan) -> list[str]:
    """Rule 3 of chargersettings: the live keys, after the file is written."""
    if "charger.current_limit_a" in plan.live:
        station.agent.set_charger_limit(plan.config.agent.charger_limit_a)
        station.config = _with_agent(station)
    return list(plan.live)


def _with_agent(station: Station) -> Io7Config:
    """The station's config with the agent's live values (other routers read it)."""
    return dataclasses.replace(station.config, agent=station.agent.config)


def _describe(plan: cs.Plan, applied: list[str]) -> str:
    parts = []
    for key in plan.changed:
        when = "now" if key in applied else "at restart"
        if cs.BY_KEY[key].secret:
            parts.append(f"{key} changed, not shown ({when})")
        else:
            parts.append(f"{key} {plan.before.get(key)!r} -> {plan.after.get(key)!r} ({when})")
    return "io7.toml: " + "; ".join(parts)


@router.get("/csms", response_model=Csms, summary="The back office connection")
async def csms(station: Annotated[Station, Depends(get_station)],
         _: Annotated[User, Depends(viewer)]) -> Csms:
    settings, client = station.agent.config.ocpp, station.agent.ocpp
    if settings is None or client is None:
        return Csms(enabled=False, url=None, charge_point_id=station.charger_id,
                    security_profile=0, connection_state="off")
    return Csms(enabled=True, url=settings.url, charge_point_id=settings.charge_point_id,
                security_profile=client.profile(), connection_state=client.state.value)


# --- the local RFID list ---------------------------------------------------------------

def _rfid_view(station: Station, tags: list[str], *, added: int = 0,
               skipped: int = 0) -> RfidList:
    sessions = station.agent.sessions
    if sessions is None:
        return RfidList(tags=tags, owner="off", in_force=[], added=added, skipped=skipped)
    store = sessions.store
    owner = "csms" if store.local_list_source() == "csms" else "config"
    return RfidList(tags=tags, owner=owner, in_force=[e.id_tag for e in store.local_list()],
                    added=added, skipped=skipped)


@router.get("/rfid", response_model=RfidList, summary="The local RFID list")
async def rfid(station: Annotated[Station, Depends(get_station)],
         _: Annotated[User, Depends(viewer)]) -> RfidList:
    values = (await _read(station))[2]
    return _rfid_view(station, values["ocpp.local_list"])


async def _set_tags(request: Request, station: Station, user: User,
                    change: Any, kind: str, what: str) -> RfidList:
    """Read the list, `change(tags) -> (new tags, added, skipped)`, check, apply, write."""
    async with _lock(request):
        text, _, values = await _read(station)
        old: list[str] = values["ocpp.local_list"]
        tags, added, skipped = change(list(old))
        path = station.config.file
        if len(tags) > LOCAL_LIST_MAX:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the local list would hold "
                                f"{len(tags)} idTags, at most {LOCAL_LIST_MAX}: remove "
                                "some (nothing was changed)")
        try:
            plan = await asyncio.to_thread(cs.plan_change, path, text,
                                           {"ocpp.local_list": tags}, unlisted=True)
        except ConfigError as exc:
            record(request, user, "settings_refused", f"{what}: {exc}")
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        sessions = station.agent.sessions
        if sessions is not None:
            if sessions.store.local_list_source() == "csms":
                raise HTTPException(status.HTTP_409_CONFLICT, "the back office (CSMS) "
                                    "manages the local list since it sent one "
                                    "(SendLocalList): change it there; io7.toml's "
                                    "local_list is ignored until then")
            try:
                sessions.store.seed_local_list(tags)
            except ValueError as exc:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{path}: ocpp.local_list: "
                                    f"{exc}: remove some tags") from None
        try:
            notes = await _write(path, plan.text, plan.after)
        except HTTPException:
            if sessions is not None:
                sessions.store.seed_local_list(old)  # back to what the file holds
            raise
        record(request, user, kind, "; ".join([what, *notes]))
    return _rfid_view(station, tags, added=added, skipped=skipped)


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()  # idTags are CiString20 (OCPP 1.6)


@router.post("/rfid", response_model=RfidList, responses=REFUSED,
             summary="Add a tag to the local RFID list (installer)")
async def rfid_add(body: RfidTag, request: Request,
                   station: Annotated[Station, Depends(get_station)],
                   user: Annotated[User, Depends(installer)]) -> RfidList:
    tag = body.id_tag.strip()

    def add(tags: list[str]) -> tuple[list[str], int, int]:
        if any(_same(t, tag) for t in tags):
            raise HTTPException(status.HTTP_409_CONFLICT, f"{tag!r} is on the list already")
        return [*tags, tag], 1, 0

    return await _set_tags(request, station, user, add, "rfid_added",
                           f"idTag {tag!r} added to the local RFID list")


@router.delete("/rfid/{id_tag}", response_model=RfidList,
               summary="Remove a tag from the local RFID list (installer)")
async def rfid_remove(id_tag: str, request: Request,
                      station: Annotated[Station, Depends(get_station)],
                      user: Annotated[User, Depends(installer)]) -> RfidList:
    def remove(tags: list[str]) -> tuple[list[str], int, int]:
        kept = [t for t in tags if not _same(t, id_tag)]
        if len(kept) == len(tags):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{id_tag!r} is not on the list")
        return kept, 0, 0

    return await _set_tags(request, station, user, remove, "rfid_removed",
                           f"idTag {id_tag!r} removed from the local RFID list")


@router.post("/rfid/import", response_model=RfidList, responses=REFUSED,
             summary="Import tags from CSV (installer)",
             description="Body: text/csv (or JSON {\"csv\": text}), the idTag in the first "
             "column, one per line; "
             "blank lines, lines starting with # and a header (id_tag, idTag, uid) are "
             "skipped. Tags already on the list are skipped; replace=true replaces it.",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"},
                              "example": "id_tag\n04A1B2C3\n04D5E6F7\n"},
                 "application/json": {"schema": {
                     "type": "object", "required": ["csv"],
                     "properties": {"csv": {"type": "string"}}}}}}})
async def rfid_import(request: Request, station: Annotated[Station, Depends(get_station)],
                      user: Annotated[User, Depends(installer)],
                      replace: Annotated[bool, Query()] = False) -> RfidList:
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if ctype not in CSV_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the file as "
                            "Content-Type text/csv, or JSON {\"csv\": text} as "
                            f"application/json (not {ctype or 'none'})")
    body = await _body(request)
    try:
        text = body.decode("utf-8-sig")
        if ctype == "application/json":
            text = CsvImport.model_validate_json(text).csv
        rows = csv_tags(text)
    except (UnicodeDecodeError, csv.Error, ValidationError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "send a UTF-8 CSV file as text/csv, "
                            f"or JSON {{\"csv\": text}}: {exc}") from None
    if len(rows) > LOCAL_LIST_MAX:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the CSV has {len(rows)} idTags; "
                            f"the local list holds at most {LOCAL_LIST_MAX}: split the file "
                            "or remove some")
    for line, tag in rows:
        try:
            cs.check_id_tags(station.config.file, [tag])
        except ConfigError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"CSV line {line}: {exc}"
                                ) from None

    def merge(tags: list[str]) -> tuple[list[str], int, int]:
        out = [] if replace else tags
        seen = {t.casefold() for t in out}  # _same's rule, one pass (review: was O(n^2))
        added = skipped = 0
        for _, tag in rows:
            if tag.casefold() in seen:
                skipped += 1
            else:
                seen.add(tag.casefold())
                out.append(tag)
                added += 1
        if len(out) > LOCAL_LIST_MAX:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"with the CSV the local list "
                                f"would hold {len(out)} idTags; it holds at most "
                                f"{LOCAL_LIST_MAX}: remove some, or import with "
                                "replace=true")
        return out, added, skipped

    return await _set_tags(request, station, user, merge, "rfid_imported",
                           f"{len(rows)} idTags imported from CSV"
                           f"{' (replacing the list)' if replace else ''}")


async def _body(request: Request) -> bytes:
    """The body, at most CSV_MAX_BYTES: a larger declared length is refused unread, a
    longer stream as soon as it passes the limit (413)."""
    too_big = HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"CSV over {CSV_MAX_BYTES} bytes: split it")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > CSV_MAX_BYTES:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > CSV_MAX_BYTES:
            raise too_big
    return bytes(body)


def csv_tags(text: str) -> list[tuple[int, str]]:
    """(line number, idTag) of each data row: the first column, stripped; blank rows,
    # comments and a header row are skipped. Raises csv.Error."""
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cell = row[0].strip() if row else ""
        if not cell or cell.startswith("#") or (n == 1 and cell.casefold() in (
                "id_tag", "idtag", "uid", "tag")):
            continue
        out.append((n, cell))
    return out
