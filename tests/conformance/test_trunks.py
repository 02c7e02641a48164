"""Inbound trunks: creation, listing filtered by trunk ids and numbers, deletion."""

from __future__ import annotations

import pytest
from livekit import api
from livekit.protocol.sip import (
    CreateSIPInboundTrunkRequest,
    DeleteSIPTrunkRequest,
    ListSIPInboundTrunkRequest,
    SIPInboundTrunkInfo,
    SIPTrunkInfo,
)

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


async def test_delete_unknown_trunk_succeeds_and_echoes_the_id(lk: api.LiveKitAPI) -> None:
    unknown = "ST_" + unique_name("gone")
    deleted = await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=unknown))
    assert deleted.sip_trunk_id == unknown


async def test_delete_trunk_answers_only_its_id(lk: api.LiveKitAPI, resources: Resources) -> None:
    trunk = await resources.trunk()
    deleted = await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
    assert deleted == SIPTrunkInfo(sip_trunk_id=trunk.sip_trunk_id)


async def test_delete_trunk_with_an_empty_id_is_invalid_argument(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=""))
    assert (err.value.code, err.value.message) == ("invalid_argument", "trunk ID is required")


async def test_trunk_without_numbers_addresses_or_auth_is_refused(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.create_inbound_trunk(
            CreateSIPInboundTrunkRequest(trunk=SIPInboundTrunkInfo(name=unique_name("bare")))
        )
    assert (err.value.code, err.value.message) == (
        "invalid_argument",
        "for security, one of the fields must be set: "
        "AuthUsername+AuthPassword, AllowedAddresses or Numbers",
    )


async def test_two_trunks_with_the_same_number_conflict(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    number = unique_number()
    holder = await resources.trunk([number])
    candidates = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest(numbers=[number]))
    with pytest.raises(api.TwirpError) as err:
        await resources.trunk([number])
    # Checked in the order [c0, NEW, c1, ...] (candidates by id); the later of the pair is named
    # first, with its numbers. Trunks without numbers are candidates too but never collide here.
    if candidates.items[0].sip_trunk_id == holder.sip_trunk_id:
        pair = f'"<new>" and "{holder.sip_trunk_id}"'
    else:
        pair = f'"{holder.sip_trunk_id}" and "<new>"'
    assert (err.value.code, err.value.message) == (
        "invalid_argument",
        f"Conflicting inbound SIP Trunks: {pair}, using the same number(s) "
        f'["{number}"] without AllowedNumbers set',
    )


async def test_list_by_number_includes_trunks_without_numbers(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    numberless = await lk.sip.create_inbound_trunk(
        CreateSIPInboundTrunkRequest(
            trunk=SIPInboundTrunkInfo(
                name=unique_name("any-number"),
                auth_username=unique_name("user"),
                auth_password=unique_name("password"),
                allowed_numbers=[unique_number()],
            )
        )
    )
    resources.trunk_ids.append(numberless.sip_trunk_id)
    listed = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest(numbers=[unique_number()]))
    assert numberless.sip_trunk_id in {t.sip_trunk_id for t in listed.items}
