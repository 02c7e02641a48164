"""The numbers callers dial, as configured on LiveKit's inbound trunks (dial-in discovery)."""

from __future__ import annotations

from collections.abc import Sequence

from livekit.api import ListSIPInboundTrunkRequest
from livekit.api.sip_service import SipService

from activities.livekit_errors import livekit_errors


async def list_trunk_numbers(sip: SipService, trunk_ids: Sequence[str]) -> list[str]:
    """Numbers of the inbound trunks (only `trunk_ids` when given), first-seen order, no repeats."""
    with livekit_errors("ListSIPInboundTrunk"):
        response = await sip.list_inbound_trunk(ListSIPInboundTrunkRequest(trunk_ids=trunk_ids))
    wanted = set(trunk_ids)
    numbers: dict[str, None] = {}
    for trunk in response.items:
        # Filtered here too: the restriction must hold even if a server ignores the filter.
        if wanted and trunk.sip_trunk_id not in wanted:
            continue
        for number in trunk.numbers:
            if number:
                numbers.setdefault(number, None)
    return list(numbers)
