"""Every name that crosses a process boundary, defined once.

Workflows, activities and their messages are registered under these names by the worker and
called by them from the client, the gateway, reconciliation and the CLI; search attributes and
visibility queries are read by the Temporal UI and operators; rule attributes are read back from
LiveKit. A typo here fails every side at once (and `tests/test_contracts.py` checks the handlers
carry these names), instead of one call at run time. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey

DEFAULT_TASK_QUEUE: Final = "meet-telephony"

# --- workflows and their messages -------------------------------------------------------------

ROOM_WORKFLOW: Final = "RoomTelephonyWorkflow"
REGISTER_UPDATE: Final = "register"
ROTATE_PIN_UPDATE: Final = "rotate_pin"
SET_SCHEDULE_UPDATE: Final = "set_schedule"
UNREGISTER_UPDATE: Final = "unregister"
LIVEKIT_EVENT_SIGNAL: Final = "livekit_event"
OBSERVED_RULES_SIGNAL: Final = "observed_rules"
STATUS_QUERY: Final = "status"
# The room's memo (`RoomMemo`): what reconciliation reads without waking the workflow.
ROOM_MEMO_KEY: Final = "telephony"

PIN_LEASE_WORKFLOW: Final = "PinLeaseWorkflow"
RELEASE_LEASE_SIGNAL: Final = "release"

RECONCILE_WORKFLOW: Final = "ReconcileWorkflow"
TRUNK_NUMBERS_WORKFLOW: Final = "TrunkNumbersWorkflow"

# --- workflow ids -----------------------------------------------------------------------------

ROOM_WORKFLOW_ID_PREFIX: Final = "telephony-room-"
PIN_LEASE_WORKFLOW_ID_PREFIX: Final = "telephony-pin-"
# Trunk number discovery: one short workflow run shared by concurrent callers.
TRUNK_NUMBERS_WORKFLOW_ID: Final = "telephony-trunk-numbers"
# Reconciliation: a Temporal Schedule starting `ReconcileWorkflow` with this workflow id.
RECONCILE_SCHEDULE_ID: Final = "telephony-reconcile"
RECONCILE_WORKFLOW_ID: Final = "telephony-reconcile-run"


# The sentinel rule routes its PIN to this room, which nobody uses (no room may register it).
SENTINEL_ROOM_ID: Final = "meet-telephony-sentinel"


def room_workflow_id(room_id: str) -> str:
    return f"{ROOM_WORKFLOW_ID_PREFIX}{room_id}"


# --- activities (implemented in `activities/`) ------------------------------------------------

ENSURE_DISPATCH_RULE: Final = "ensure_dispatch_rule"
DELETE_DISPATCH_RULE: Final = "delete_dispatch_rule"
CHECK_ROOM_LIVENESS: Final = "check_room_liveness"
LIST_TRUNK_NUMBERS: Final = "list_trunk_numbers"
LEASE_PIN: Final = "lease_pin"  # a local activity: draw a PIN and start its lease
# Reconciliation, one page of one stage each (`ReconcileStage`).
RECONCILE_RULES: Final = "reconcile_rules"
RECONCILE_ROOMS: Final = "reconcile_rooms"
RECONCILE_SESSIONS: Final = "reconcile_sessions"
RECONCILE_LEASES: Final = "reconcile_leases"
RECONCILE_SENTINEL: Final = "reconcile_sentinel"

# --- `ApplicationError.type` values: what went wrong, for callers that translate errors -------

LIVEKIT_CREDENTIALS_REJECTED: Final = "LiveKitCredentialsRejected"
LIVEKIT_INVALID_ARGUMENT: Final = "LiveKitInvalidArgument"
PIN_HELD_BY_ANOTHER_RULE: Final = "PinHeldByAnotherRule"
PIN_SPACE_EXHAUSTED: Final = "PinSpaceExhausted"
PIN_TAKEN: Final = "PinTaken"  # a requested PIN is leased by another room
PIN_CONFLICT: Final = "PinConflict"  # a PIN was requested for a room that has another one
INVALID_PIN: Final = "InvalidPin"  # a requested PIN is not 4-16 digits
TELEPHONY_DISABLED: Final = "TelephonyDisabled"
INVALID_ROOM_ID: Final = "InvalidRoomId"
ROOM_NOT_REGISTERED: Final = "RoomNotRegistered"
INVALID_SCHEDULE: Final = "InvalidSchedule"

# --- search attributes (registered by the worker at start-up; the PIN is never one) -----------

TELEPHONY_ROOM_ID: Final = SearchAttributeKey.for_keyword("TelephonyRoomId")
TELEPHONY_STATE: Final = SearchAttributeKey.for_keyword("TelephonyState")
SEARCH_ATTRIBUTES: Final = (TELEPHONY_ROOM_ID, TELEPHONY_STATE)


def running_rooms_query(*, state: str | None = None, task_queue: str | None = None) -> str:
    """The visibility query for running room workflows, optionally in one `TelephonyState` and
    on one task queue. Values are the service's own (enum values, a configured queue name)."""
    query = f"WorkflowType = '{ROOM_WORKFLOW}' AND ExecutionStatus = 'Running'"
    if state is not None:
        query += f" AND {TELEPHONY_STATE.name} = '{state}'"
    if task_queue:
        query += f" AND TaskQueue = '{task_queue}'"
    return query


def running_leases_query(*, task_queue: str | None = None) -> str:
    query = f"WorkflowType = '{PIN_LEASE_WORKFLOW}' AND ExecutionStatus = 'Running'"
    if task_queue:
        query += f" AND TaskQueue = '{task_queue}'"
    return query


# --- LiveKit dispatch rules: how this service recognises its own ------------------------------

MANAGED_BY_ATTRIBUTE: Final = "telephony.managed_by"
MANAGED_BY_VALUE: Final = "meet-telephony"
ROOM_ID_ATTRIBUTE: Final = "telephony.room_id"
# Marks the sentinel rule ("true"): a managed rule that is no room's.
SENTINEL_ATTRIBUTE: Final = "telephony.sentinel"


def dispatch_rule_name(room_id: str) -> str:
    return room_workflow_id(room_id)
