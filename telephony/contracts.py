"""Names shared by workflows and the code that implements or calls them.

Workflows refer to activities by these names (with the pydantic models of `telephony.models` as
arguments and results), so workflow code never imports the LiveKit client.
"""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey

# Activities (implemented in `activities/`).
ENSURE_DISPATCH_RULE: Final = "ensure_dispatch_rule"
DELETE_DISPATCH_RULE: Final = "delete_dispatch_rule"
CHECK_ROOM_LIVENESS: Final = "check_room_liveness"
LIST_TRUNK_NUMBERS: Final = "list_trunk_numbers"
LIST_MANAGED_RULES: Final = "list_managed_rules"
DRAW_PIN: Final = "draw_pin"
IS_WORKFLOW_OPEN: Final = "is_workflow_open"
FILTER_OPEN_ROOMS: Final = "filter_open_rooms"
LIST_ROOMS_IN_STATE: Final = "list_rooms_in_state"

# Trunk number discovery: one short workflow run shared by concurrent callers.
TRUNK_NUMBERS_WORKFLOW_ID: Final = "telephony-trunk-numbers"

# Reconciliation: a Temporal Schedule starting `ReconcileWorkflow` with this workflow id.
RECONCILE_SCHEDULE_ID: Final = "telephony-reconcile"
RECONCILE_WORKFLOW_ID: Final = "telephony-reconcile-run"

# `ApplicationError.type` values: what went wrong, for callers that translate errors.
LIVEKIT_CREDENTIALS_REJECTED: Final = "LiveKitCredentialsRejected"
LIVEKIT_INVALID_ARGUMENT: Final = "LiveKitInvalidArgument"
PIN_HELD_BY_ANOTHER_RULE: Final = "PinHeldByAnotherRule"
PIN_SPACE_EXHAUSTED: Final = "PinSpaceExhausted"
TELEPHONY_DISABLED: Final = "TelephonyDisabled"
INVALID_ROOM_ID: Final = "InvalidRoomId"
ROOM_NOT_REGISTERED: Final = "RoomNotRegistered"
INVALID_SCHEDULE: Final = "InvalidSchedule"

# Search attributes (registered by the worker at start-up). The PIN is never one of them.
TELEPHONY_ROOM_ID: Final = SearchAttributeKey.for_keyword("TelephonyRoomId")
TELEPHONY_STATE: Final = SearchAttributeKey.for_keyword("TelephonyState")
SEARCH_ATTRIBUTES: Final = (TELEPHONY_ROOM_ID, TELEPHONY_STATE)
