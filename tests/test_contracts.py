"""The names in `telephony/contracts.py` are the ones the worker registers: every workflow and
message a client calls by name exists under that name (activities: `tests/test_activities.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import workflow

from telephony import contracts
from worker.app import WORKFLOWS
from workflows.pin_lease import PinLeaseWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.room import RoomTelephonyWorkflow
from workflows.trunk_numbers import TrunkNumbersWorkflow


def definition(cls: type) -> Any:
    return workflow._Definition.from_class(cls)


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        (RoomTelephonyWorkflow, contracts.ROOM_WORKFLOW),
        (PinLeaseWorkflow, contracts.PIN_LEASE_WORKFLOW),
        (ReconcileWorkflow, contracts.RECONCILE_WORKFLOW),
        (TrunkNumbersWorkflow, contracts.TRUNK_NUMBERS_WORKFLOW),
    ],
)
def test_each_workflow_is_registered_under_its_contract_name(cls: type, name: str) -> None:
    assert cls in WORKFLOWS
    assert definition(cls).name == name


def test_the_room_workflow_handles_every_message_clients_send_by_name() -> None:
    room = definition(RoomTelephonyWorkflow)

    assert set(room.updates) == {
        contracts.REGISTER_UPDATE,
        contracts.ROTATE_PIN_UPDATE,
        contracts.SET_SCHEDULE_UPDATE,
        contracts.UNREGISTER_UPDATE,
    }
    assert set(room.signals) == {contracts.LIVEKIT_EVENT_SIGNAL, contracts.OBSERVED_RULES_SIGNAL}
    assert set(room.queries) == {contracts.STATUS_QUERY}


def test_the_pin_lease_takes_its_release_signal_by_its_contract_name() -> None:
    assert set(definition(PinLeaseWorkflow).signals) == {contracts.RELEASE_LEASE_SIGNAL}
