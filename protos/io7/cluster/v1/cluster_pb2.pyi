from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHASE_UNSPECIFIED: _ClassVar[Phase]
    PHASE_L1: _ClassVar[Phase]
    PHASE_L2: _ClassVar[Phase]
    PHASE_L3: _ClassVar[Phase]

class PilotState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PILOT_STATE_UNSPECIFIED: _ClassVar[PilotState]
    PILOT_STATE_A: _ClassVar[PilotState]
    PILOT_STATE_B: _ClassVar[PilotState]
    PILOT_STATE_C: _ClassVar[PilotState]
    PILOT_STATE_D: _ClassVar[PilotState]
    PILOT_STATE_E: _ClassVar[PilotState]
    PILOT_STATE_F: _ClassVar[PilotState]

class ConnectorStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTOR_STATUS_UNSPECIFIED: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_AVAILABLE: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_PREPARING: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_CHARGING: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_SUSPENDED_EVSE: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_SUSPENDED_EV: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_FINISHING: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_RESERVED: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_UNAVAILABLE: _ClassVar[ConnectorStatus]
    CONNECTOR_STATUS_FAULTED: _ClassVar[ConnectorStatus]

class LoadBalancingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOAD_BALANCING_MODE_UNSPECIFIED: _ClassVar[LoadBalancingMode]
    LOAD_BALANCING_MODE_STATIC: _ClassVar[LoadBalancingMode]
    LOAD_BALANCING_MODE_DYNAMIC: _ClassVar[LoadBalancingMode]

class OfflineStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFLINE_STRATEGY_UNSPECIFIED: _ClassVar[OfflineStrategy]
    OFFLINE_STRATEGY_ZERO: _ClassVar[OfflineStrategy]
    OFFLINE_STRATEGY_MINIMISE: _ClassVar[OfflineStrategy]
    OFFLINE_STRATEGY_MAXIMISE: _ClassVar[OfflineStrategy]

class CtPlacement(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CT_PLACEMENT_UNSPECIFIED: _ClassVar[CtPlacement]
    CT_PLACEMENT_GRID: _ClassVar[CtPlacement]
    CT_PLACEMENT_OTHER_LOADS: _ClassVar[CtPlacement]

class CtStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CT_STATUS_UNSPECIFIED: _ClassVar[CtStatus]
    CT_STATUS_OK: _ClassVar[CtStatus]
    CT_STATUS_STALE: _ClassVar[CtStatus]
    CT_STATUS_LOST: _ClassVar[CtStatus]
    CT_STATUS_NOT_USED: _ClassVar[CtStatus]

class LimitReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIMIT_REASON_UNSPECIFIED: _ClassVar[LimitReason]
    LIMIT_REASON_NO_DEMAND: _ClassVar[LimitReason]
    LIMIT_REASON_CONNECTOR_MAX: _ClassVar[LimitReason]
    LIMIT_REASON_CHARGER_LIMIT: _ClassVar[LimitReason]
    LIMIT_REASON_PHASE_LIMIT: _ClassVar[LimitReason]
    LIMIT_REASON_DEMAND_CAP: _ClassVar[LimitReason]
    LIMIT_REASON_RAMP: _ClassVar[LimitReason]
    LIMIT_REASON_CT_STALE: _ClassVar[LimitReason]
    LIMIT_REASON_TRANSITION: _ClassVar[LimitReason]
    LIMIT_REASON_PAUSED_NO_ROOM: _ClassVar[LimitReason]
    LIMIT_REASON_PAUSED_ROTATION: _ClassVar[LimitReason]
    LIMIT_REASON_PAUSED_MIN_PAUSE: _ClassVar[LimitReason]
    LIMIT_REASON_OFFLINE_STRATEGY: _ClassVar[LimitReason]
    LIMIT_REASON_OFFLINE: _ClassVar[LimitReason]
    LIMIT_REASON_FAILSAFE: _ClassVar[LimitReason]
PHASE_UNSPECIFIED: Phase
PHASE_L1: Phase
PHASE_L2: Phase
PHASE_L3: Phase
PILOT_STATE_UNSPECIFIED: PilotState
PILOT_STATE_A: PilotState
PILOT_STATE_B: PilotState
PILOT_STATE_C: PilotState
PILOT_STATE_D: PilotState
PILOT_STATE_E: PilotState
PILOT_STATE_F: PilotState
CONNECTOR_STATUS_UNSPECIFIED: ConnectorStatus
CONNECTOR_STATUS_AVAILABLE: ConnectorStatus
CONNECTOR_STATUS_PREPARING: ConnectorStatus
CONNECTOR_STATUS_CHARGING: ConnectorStatus
CONNECTOR_STATUS_SUSPENDED_EVSE: ConnectorStatus
CONNECTOR_STATUS_SUSPENDED_EV: ConnectorStatus
CONNECTOR_STATUS_FINISHING: ConnectorStatus
CONNECTOR_STATUS_RESERVED: ConnectorStatus
CONNECTOR_STATUS_UNAVAILABLE: ConnectorStatus
CONNECTOR_STATUS_FAULTED: ConnectorStatus
LOAD_BALANCING_MODE_UNSPECIFIED: LoadBalancingMode
LOAD_BALANCING_MODE_STATIC: LoadBalancingMode
LOAD_BALANCING_MODE_DYNAMIC: LoadBalancingMode
OFFLINE_STRATEGY_UNSPECIFIED: OfflineStrategy
OFFLINE_STRATEGY_ZERO: OfflineStrategy
OFFLINE_STRATEGY_MINIMISE: OfflineStrategy
OFFLINE_STRATEGY_MAXIMISE: OfflineStrategy
CT_PLACEMENT_UNSPECIFIED: CtPlacement
CT_PLACEMENT_GRID: CtPlacement
CT_PLACEMENT_OTHER_LOADS: CtPlacement
CT_STATUS_UNSPECIFIED: CtStatus
CT_STATUS_OK: CtStatus
CT_STATUS_STALE: CtStatus
CT_STATUS_LOST: CtStatus
CT_STATUS_NOT_USED: CtStatus
LIMIT_REASON_UNSPECIFIED: LimitReason
LIMIT_REASON_NO_DEMAND: LimitReason
LIMIT_REASON_CONNECTOR_MAX: LimitReason
LIMIT_REASON_CHARGER_LIMIT: LimitReason
LIMIT_REASON_PHASE_LIMIT: LimitReason
LIMIT_REASON_DEMAND_CAP: LimitReason
LIMIT_REASON_RAMP: LimitReason
LIMIT_REASON_CT_STALE: LimitReason
LIMIT_REASON_TRANSITION: LimitReason
LIMIT_REASON_PAUSED_NO_ROOM: LimitReason
LIMIT_REASON_PAUSED_ROTATION: LimitReason
LIMIT_REASON_PAUSED_MIN_PAUSE: LimitReason
LIMIT_REASON_OFFLINE_STRATEGY: LimitReason
LIMIT_REASON_OFFLINE: LimitReason
LIMIT_REASON_FAILSAFE: LimitReason

class ConnectorWiring(_message.Message):
    __slots__ = ("l1", "l2", "l3")
    L1_FIELD_NUMBER: _ClassVar[int]
    L2_FIELD_NUMBER: _ClassVar[int]
    L3_FIELD_NUMBER: _ClassVar[int]
    l1: Phase
    l2: Phase
    l3: Phase
    def __init__(self, l1: _Optional[_Union[Phase, str]] = ..., l2: _Optional[_Union[Phase, str]] = ..., l3: _Optional[_Union[Phase, str]] = ...) -> None: ...

class LineValues(_message.Message):
    __slots__ = ("l1", "l2", "l3")
    L1_FIELD_NUMBER: _ClassVar[int]
    L2_FIELD_NUMBER: _ClassVar[int]
    L3_FIELD_NUMBER: _ClassVar[int]
    l1: float
    l2: float
    l3: float
    def __init__(self, l1: _Optional[float] = ..., l2: _Optional[float] = ..., l3: _Optional[float] = ...) -> None: ...

class ConnectorInfo(_message.Message):
    __slots__ = ("connector_id", "wiring", "hard_max_current_a", "meter_description")
    CONNECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    WIRING_FIELD_NUMBER: _ClassVar[int]
    HARD_MAX_CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    METER_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    connector_id: int
    wiring: ConnectorWiring
    hard_max_current_a: float
    meter_description: str
    def __init__(self, connector_id: _Optional[int] = ..., wiring: _Optional[_Union[ConnectorWiring, _Mapping]] = ..., hard_max_current_a: _Optional[float] = ..., meter_description: _Optional[str] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("charger_id", "group", "firmware_version", "software_version", "charger_current_limit_a", "connectors", "last_seen_term")
    CHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHARGER_CURRENT_LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    CONNECTORS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TERM_FIELD_NUMBER: _ClassVar[int]
    charger_id: str
    group: str
    firmware_version: str
    software_version: str
    charger_current_limit_a: float
    connectors: _containers.RepeatedCompositeFieldContainer[ConnectorInfo]
    last_seen_term: int
    def __init__(self, charger_id: _Optional[str] = ..., group: _Optional[str] = ..., firmware_version: _Optional[str] = ..., software_version: _Optional[str] = ..., charger_current_limit_a: _Optional[float] = ..., connectors: _Optional[_Iterable[_Union[ConnectorInfo, _Mapping]]] = ..., last_seen_term: _Optional[int] = ...) -> None: ...

class ConnectorState(_message.Message):
    __slots__ = ("connector_id", "pilot_state", "status", "error_code", "vendor_error_code", "current_a", "voltage_v", "active_power_w", "energy_import_wh", "session_energy_wh", "phases_in_use", "offered_current_a", "max_current_a", "wants_power", "session_id", "transaction_id", "meter_ok", "tag_pseudonym")
    CONNECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    PILOT_STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_V_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    ENERGY_IMPORT_WH_FIELD_NUMBER: _ClassVar[int]
    SESSION_ENERGY_WH_FIELD_NUMBER: _ClassVar[int]
    PHASES_IN_USE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    MAX_CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    WANTS_POWER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    METER_OK_FIELD_NUMBER: _ClassVar[int]
    TAG_PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    connector_id: int
    pilot_state: PilotState
    status: ConnectorStatus
    error_code: str
    vendor_error_code: str
    current_a: LineValues
    voltage_v: LineValues
    active_power_w: float
    energy_import_wh: float
    session_energy_wh: float
    phases_in_use: int
    offered_current_a: float
    max_current_a: float
    wants_power: bool
    session_id: str
    transaction_id: str
    meter_ok: bool
    tag_pseudonym: str
    def __init__(self, connector_id: _Optional[int] = ..., pilot_state: _Optional[_Union[PilotState, str]] = ..., status: _Optional[_Union[ConnectorStatus, str]] = ..., error_code: _Optional[str] = ..., vendor_error_code: _Optional[str] = ..., current_a: _Optional[_Union[LineValues, _Mapping]] = ..., voltage_v: _Optional[_Union[LineValues, _Mapping]] = ..., active_power_w: _Optional[float] = ..., energy_import_wh: _Optional[float] = ..., session_energy_wh: _Optional[float] = ..., phases_in_use: _Optional[int] = ..., offered_current_a: _Optional[float] = ..., max_current_a: _Optional[float] = ..., wants_power: _Optional[bool] = ..., session_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., meter_ok: _Optional[bool] = ..., tag_pseudonym: _Optional[str] = ...) -> None: ...

class AgentState(_message.Message):
    __slots__ = ("charger_id", "sequence", "monotonic_ms", "connectors", "term_applied", "cycle_applied", "lease_ok", "highest_term_seen", "limits_refused_reason", "station_limit", "charger_current_limit_a")
    CHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MONOTONIC_MS_FIELD_NUMBER: _ClassVar[int]
    CONNECTORS_FIELD_NUMBER: _ClassVar[int]
    TERM_APPLIED_FIELD_NUMBER: _ClassVar[int]
    CYCLE_APPLIED_FIELD_NUMBER: _ClassVar[int]
    LEASE_OK_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_TERM_SEEN_FIELD_NUMBER: _ClassVar[int]
    LIMITS_REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    STATION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHARGER_CURRENT_LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    charger_id: str
    sequence: int
    monotonic_ms: int
    connectors: _containers.RepeatedCompositeFieldContainer[ConnectorState]
    term_applied: int
    cycle_applied: int
    lease_ok: bool
    highest_term_seen: int
    limits_refused_reason: str
    station_limit: ExternalLimit
    charger_current_limit_a: float
    def __init__(self, charger_id: _Optional[str] = ..., sequence: _Optional[int] = ..., monotonic_ms: _Optional[int] = ..., connectors: _Optional[_Iterable[_Union[ConnectorState, _Mapping]]] = ..., term_applied: _Optional[int] = ..., cycle_applied: _Optional[int] = ..., lease_ok: _Optional[bool] = ..., highest_term_seen: _Optional[int] = ..., limits_refused_reason: _Optional[str] = ..., station_limit: _Optional[_Union[ExternalLimit, _Mapping]] = ..., charger_current_limit_a: _Optional[float] = ...) -> None: ...

class ExternalLimit(_message.Message):
    __slots__ = ("limit_a", "valid_until_unix_ms", "source")
    LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    limit_a: float
    valid_until_unix_ms: int
    source: str
    def __init__(self, limit_a: _Optional[float] = ..., valid_until_unix_ms: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("hello", "state")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    state: AgentState
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., state: _Optional[_Union[AgentState, _Mapping]] = ...) -> None: ...

class GroupSettings(_message.Message):
    __slots__ = ("group", "mode", "offline_strategy", "failsafe_current_a", "cycle_ms", "lease_ms")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FAILSAFE_CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    CYCLE_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    group: str
    mode: LoadBalancingMode
    offline_strategy: OfflineStrategy
    failsafe_current_a: float
    cycle_ms: int
    lease_ms: int
    def __init__(self, group: _Optional[str] = ..., mode: _Optional[_Union[LoadBalancingMode, str]] = ..., offline_strategy: _Optional[_Union[OfflineStrategy, str]] = ..., failsafe_current_a: _Optional[float] = ..., cycle_ms: _Optional[int] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("term", "settings", "master_id")
    TERM_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    term: int
    settings: GroupSettings
    master_id: str
    def __init__(self, term: _Optional[int] = ..., settings: _Optional[_Union[GroupSettings, _Mapping]] = ..., master_id: _Optional[str] = ...) -> None: ...

class ConnectorLimit(_message.Message):
    __slots__ = ("connector_id", "current_a", "reason", "limiting_phase")
    CONNECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LIMITING_PHASE_FIELD_NUMBER: _ClassVar[int]
    connector_id: int
    current_a: float
    reason: LimitReason
    limiting_phase: Phase
    def __init__(self, connector_id: _Optional[int] = ..., current_a: _Optional[float] = ..., reason: _Optional[_Union[LimitReason, str]] = ..., limiting_phase: _Optional[_Union[Phase, str]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("term", "cycle", "valid_for_ms", "failsafe_current_a", "connectors", "issued_at_ms")
    TERM_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    VALID_FOR_MS_FIELD_NUMBER: _ClassVar[int]
    FAILSAFE_CURRENT_A_FIELD_NUMBER: _ClassVar[int]
    CONNECTORS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    term: int
    cycle: int
    valid_for_ms: int
    failsafe_current_a: float
    connectors: _containers.RepeatedCompositeFieldContainer[ConnectorLimit]
    issued_at_ms: int
    def __init__(self, term: _Optional[int] = ..., cycle: _Optional[int] = ..., valid_for_ms: _Optional[int] = ..., failsafe_current_a: _Optional[float] = ..., connectors: _Optional[_Iterable[_Union[ConnectorLimit, _Mapping]]] = ..., issued_at_ms: _Optional[int] = ...) -> None: ...

class MasterMessage(_message.Message):
    __slots__ = ("welcome", "limits")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    limits: Limits
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class PhaseStatus(_message.Message):
    __slots__ = ("phase", "limit_a", "ct_a", "other_load_a", "reserved_offline_a", "available_a", "allocated_a", "configured_limit_a", "limit_source")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    CT_A_FIELD_NUMBER: _ClassVar[int]
    OTHER_LOAD_A_FIELD_NUMBER: _ClassVar[int]
    RESERVED_OFFLINE_A_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_A_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_A_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    LIMIT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    phase: Phase
    limit_a: float
    ct_a: float
    other_load_a: float
    reserved_offline_a: float
    available_a: float
    allocated_a: float
    configured_limit_a: float
    limit_source: str
    def __init__(self, phase: _Optional[_Union[Phase, str]] = ..., limit_a: _Optional[float] = ..., ct_a: _Optional[float] = ..., other_load_a: _Optional[float] = ..., reserved_offline_a: _Optional[float] = ..., available_a: _Optional[float] = ..., allocated_a: _Optional[float] = ..., configured_limit_a: _Optional[float] = ..., limit_source: _Optional[str] = ...) -> None: ...

class ConnectorStatusView(_message.Message):
    __slots__ = ("connector_id", "status", "pilot_state", "offered_a", "allocated_a", "measured_a", "reason", "limiting_phase", "session_energy_wh", "wiring")
    CONNECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PILOT_STATE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_A_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_A_FIELD_NUMBER: _ClassVar[int]
    MEASURED_A_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LIMITING_PHASE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ENERGY_WH_FIELD_NUMBER: _ClassVar[int]
    WIRING_FIELD_NUMBER: _ClassVar[int]
    connector_id: int
    status: ConnectorStatus
    pilot_state: PilotState
    offered_a: float
    allocated_a: float
    measured_a: LineValues
    reason: LimitReason
    limiting_phase: Phase
    session_energy_wh: float
    wiring: ConnectorWiring
    def __init__(self, connector_id: _Optional[int] = ..., status: _Optional[_Union[ConnectorStatus, str]] = ..., pilot_state: _Optional[_Union[PilotState, str]] = ..., offered_a: _Optional[float] = ..., allocated_a: _Optional[float] = ..., measured_a: _Optional[_Union[LineValues, _Mapping]] = ..., reason: _Optional[_Union[LimitReason, str]] = ..., limiting_phase: _Optional[_Union[Phase, str]] = ..., session_energy_wh: _Optional[float] = ..., wiring: _Optional[_Union[ConnectorWiring, _Mapping]] = ...) -> None: ...

class MemberStatus(_message.Message):
    __slots__ = ("charger_id", "online", "last_seen_ms_ago", "address", "connectors", "offline_reason", "limits_refused_reason")
    CHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_MS_AGO_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CONNECTORS_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    LIMITS_REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    charger_id: str
    online: bool
    last_seen_ms_ago: int
    address: str
    connectors: _containers.RepeatedCompositeFieldContainer[ConnectorStatusView]
    offline_reason: str
    limits_refused_reason: str
    def __init__(self, charger_id: _Optional[str] = ..., online: _Optional[bool] = ..., last_seen_ms_ago: _Optional[int] = ..., address: _Optional[str] = ..., connectors: _Optional[_Iterable[_Union[ConnectorStatusView, _Mapping]]] = ..., offline_reason: _Optional[str] = ..., limits_refused_reason: _Optional[str] = ...) -> None: ...

class GroupStatus(_message.Message):
    __slots__ = ("group", "term", "cycle", "mode", "ct_status", "ct_fault", "phases", "members", "cycle_duration_ms", "master_id", "ct_placement", "offline_strategy", "external_limits", "member_count", "online_count", "delta", "removed_member_ids")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CT_STATUS_FIELD_NUMBER: _ClassVar[int]
    CT_FAULT_FIELD_NUMBER: _ClassVar[int]
    PHASES_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CYCLE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    CT_PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_LIMITS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_COUNT_FIELD_NUMBER: _ClassVar[int]
    ONLINE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REMOVED_MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    group: str
    term: int
    cycle: int
    mode: LoadBalancingMode
    ct_status: CtStatus
    ct_fault: str
    phases: _containers.RepeatedCompositeFieldContainer[PhaseStatus]
    members: _containers.RepeatedCompositeFieldContainer[MemberStatus]
    cycle_duration_ms: float
    master_id: str
    ct_placement: CtPlacement
    offline_strategy: OfflineStrategy
    external_limits: _containers.RepeatedCompositeFieldContainer[ExternalLimitStatus]
    member_count: int
    online_count: int
    delta: bool
    removed_member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group: _Optional[str] = ..., term: _Optional[int] = ..., cycle: _Optional[int] = ..., mode: _Optional[_Union[LoadBalancingMode, str]] = ..., ct_status: _Optional[_Union[CtStatus, str]] = ..., ct_fault: _Optional[str] = ..., phases: _Optional[_Iterable[_Union[PhaseStatus, _Mapping]]] = ..., members: _Optional[_Iterable[_Union[MemberStatus, _Mapping]]] = ..., cycle_duration_ms: _Optional[float] = ..., master_id: _Optional[str] = ..., ct_placement: _Optional[_Union[CtPlacement, str]] = ..., offline_strategy: _Optional[_Union[OfflineStrategy, str]] = ..., external_limits: _Optional[_Iterable[_Union[ExternalLimitStatus, _Mapping]]] = ..., member_count: _Optional[int] = ..., online_count: _Optional[int] = ..., delta: _Optional[bool] = ..., removed_member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExternalLimitStatus(_message.Message):
    __slots__ = ("source", "phases", "valid_until_unix_ms")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PHASES_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    source: str
    phases: _containers.RepeatedCompositeFieldContainer[PhaseLimit]
    valid_until_unix_ms: int
    def __init__(self, source: _Optional[str] = ..., phases: _Optional[_Iterable[_Union[PhaseLimit, _Mapping]]] = ..., valid_until_unix_ms: _Optional[int] = ...) -> None: ...

class PhaseLimit(_message.Message):
    __slots__ = ("phase", "limit_a")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    phase: Phase
    limit_a: float
    def __init__(self, phase: _Optional[_Union[Phase, str]] = ..., limit_a: _Optional[float] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("summary_only", "members_offset", "members_limit")
    SUMMARY_ONLY_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_OFFSET_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    summary_only: bool
    members_offset: int
    members_limit: int
    def __init__(self, summary_only: _Optional[bool] = ..., members_offset: _Optional[int] = ..., members_limit: _Optional[int] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ("min_interval_ms", "summary_only", "deltas")
    MIN_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_ONLY_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    min_interval_ms: int
    summary_only: bool
    deltas: bool
    def __init__(self, min_interval_ms: _Optional[int] = ..., summary_only: _Optional[bool] = ..., deltas: _Optional[bool] = ...) -> None: ...

class RebuildGroupRequest(_message.Message):
    __slots__ = ("removed_charger_ids",)
    REMOVED_CHARGER_IDS_FIELD_NUMBER: _ClassVar[int]
    removed_charger_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, removed_charger_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RebuildGroupResponse(_message.Message):
    __slots__ = ("removed_charger_ids", "kept_charger_ids", "offline_kept_charger_ids")
    REMOVED_CHARGER_IDS_FIELD_NUMBER: _ClassVar[int]
    KEPT_CHARGER_IDS_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_KEPT_CHARGER_IDS_FIELD_NUMBER: _ClassVar[int]
    removed_charger_ids: _containers.RepeatedScalarFieldContainer[str]
    kept_charger_ids: _containers.RepeatedScalarFieldContainer[str]
    offline_kept_charger_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, removed_charger_ids: _Optional[_Iterable[str]] = ..., kept_charger_ids: _Optional[_Iterable[str]] = ..., offline_kept_charger_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SetGroupLimitRequest(_message.Message):
    __slots__ = ("limit_a",)
    LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    limit_a: float
    def __init__(self, limit_a: _Optional[float] = ...) -> None: ...

class SetGroupLimitResponse(_message.Message):
    __slots__ = ("limit_a", "previous_limit_a", "installed_limit_a")
    LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_LIMIT_A_FIELD_NUMBER: _ClassVar[int]
    limit_a: float
    previous_limit_a: float
    installed_limit_a: float
    def __init__(self, limit_a: _Optional[float] = ..., previous_limit_a: _Optional[float] = ..., installed_limit_a: _Optional[float] = ...) -> None: ...

class AdmitMemberRequest(_message.Message):
    __slots__ = ("charger_id",)
    CHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    charger_id: str
    def __init__(self, charger_id: _Optional[str] = ...) -> None: ...

class AdmitMemberResponse(_message.Message):
    __slots__ = ("charger_id", "admitted")
    CHARGER_ID_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    charger_id: str
    admitted: bool
    def __init__(self, charger_id: _Optional[str] = ..., admitted: _Optional[bool] = ...) -> None: ...

class GetSecurityLogRequest(_message.Message):
    __slots__ = ("max_entries",)
    MAX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    max_entries: int
    def __init__(self, max_entries: _Optional[int] = ...) -> None: ...

class SecurityEvent(_message.Message):
    __slots__ = ("time_utc", "kind", "who", "peer", "detail")
    TIME_UTC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    time_utc: str
    kind: str
    who: str
    peer: str
    detail: str
    def __init__(self, time_utc: _Optional[str] = ..., kind: _Optional[str] = ..., who: _Optional[str] = ..., peer: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetSecurityLogResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[SecurityEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[SecurityEvent, _Mapping]]] = ...) -> None: ...
