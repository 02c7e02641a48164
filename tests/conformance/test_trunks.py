"""Inbound trunks: creation, listing filtered by trunk ids and numbers, deletion."""

from __future__ import annotations

import pytest
from livekit import api
from livekit.protocol.sip import DeleteSIPTrunkRequest, ListSIPInboundTrunkRequest

from tests.conformance.conftest import Resources, unique_name, unique_number


async def test_create_inbound_trunk_returns_st_id_and_numbers(resources: Resources) -> None:
    number = unique_number()
    trunk = await resources.trunk([number])
    assert trunk.sip_trunk_id.startswith("ST_")
    assert list(trunk.numbers) == [number]


async def test_list_inbound_trunks_filters_by_numbers(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    wanted, other = await resources.trunk(), await resources.trunk()
    listed = await lk.sip.list_inbound_trunk(
        ListSIPInboundTrunkRequest(numbers=[wanted.numbers[0]])
    )
    ids = {t.sip_trunk_id for t in listed.items}
    assert wanted.sip_trunk_id in ids
    assert other.sip_trunk_id not in ids


async def test_list_inbound_trunks_filters_by_trunk_ids(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    wanted, _ = await resources.trunk(), await resources.trunk()
    listed = await lk.sip.list_inbound_trunk(
        ListSIPInboundTrunkRequest(trunk_ids=[wanted.sip_trunk_id])
    )
    assert [t.sip_trunk_id for t in listed.items] == [wanted.sip_trunk_id]


async def test_delete_trunk_removes_it(lk: api.LiveKitAPI, resources: Resources) -> None:
    trunk = await resources.trunk()
    await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
    listed = await lk.sip.list_inbound_trunk(
        ListSIPInboundTrunkRequest(trunk_ids=[trunk.sip_trunk_id])
    )
    assert list(listed.items) == []


async def test_delete_unknown_trunk_is_not_found(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id="ST_" + unique_name("gone")))
    assert (err.value.status, err.value.code) == (404, "not_found")
