"""The LiveKit-facing activities, bound to one shared `LiveKitAPI` session per worker."""

from __future__ import annotations

from livekit.api import LiveKitAPI
from temporalio import activity

from activities import dispatch_rules, rooms, trunks
from telephony import contracts
from telephony.models import EnsureRuleRequest, EnsureRuleResult, RoomLiveness
from telephony.settings import Settings


class LiveKitActivities:
    """Dispatch rules, room liveness and trunk numbers.

    `livekit` is owned by the caller (see `open_livekit_api`): one aiohttp session for every call
    of the worker, closed at shutdown.
    """

    def __init__(
        self,
        settings: Settings,
        livekit: LiveKitAPI,
    ) -> None:
        self._livekit = livekit
        self._trunk_ids = tuple(settings.room_telephony_trunk_ids)
        self._hide_phone_number = settings.room_telephony_hide_phone_number

    @activity.defn(name=contracts.ENSURE_DISPATCH_RULE)
    async def ensure_dispatch_rule(self, request: EnsureRuleRequest) -> EnsureRuleResult:
        return await dispatch_rules.ensure_dispatch_rule(
            self._livekit.sip,
            request,
            trunk_ids=self._trunk_ids,
            hide_phone_number=self._hide_phone_number,
        )

    @activity.defn(name=contracts.DELETE_DISPATCH_RULE)
    async def delete_dispatch_rule(self, rule_id: str) -> bool:
        return await dispatch_rules.delete_dispatch_rule(self._livekit.sip, rule_id)

    @activity.defn(name=contracts.CHECK_ROOM_LIVENESS)
    async def check_room_liveness(self, room_id: str) -> RoomLiveness:
        return await rooms.check_room_liveness(self._livekit.room, room_id)

    @activity.defn(name=contracts.LIST_TRUNK_NUMBERS)
    async def list_trunk_numbers(self) -> list[str]:
        return await trunks.list_trunk_numbers(self._livekit.sip, self._trunk_ids)
