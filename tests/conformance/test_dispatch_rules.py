"""Dispatch rules: creation, LiveKit's conflict validation, list filters and pages, delete,
update. PINs, numbers and names are unique per test, so a shared server is fine."""

from __future__ import annotations

import pytest
from livekit import api
from livekit.protocol.models import ListUpdate, Pagination
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
)

from tests.conformance.conftest import Resources, direct_rule, unique_name, unique_pin

CONFLICT = (
    "Dispatch rule for the same trunk, inbound number, number, and PIN combination "
    'already exists in dispatch rule "{id}" "{name}"'
)


async def test_create_returns_sdr_id_and_stored_fields(resources: Resources) -> None:
    info = direct_rule(unique_pin(), room="room-a", name=unique_name("rule"))
    info.attributes["telephony.room_id"] = "room-a"
    info.hide_phone_number = True
    created = await resources.rule(info)
    assert created.sip_dispatch_rule_id.startswith("SDR_")
    assert created.name == info.name
    assert created.rule.dispatch_rule_direct == info.rule.dispatch_rule_direct
    assert dict(created.attributes) == {"telephony.room_id": "room-a"}
    assert created.hide_phone_number


async def test_create_accepts_the_flat_request_form(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    pin = unique_pin()
    created = await lk.sip.create_dispatch_rule(
        CreateSIPDispatchRuleRequest(
            name=unique_name("flat"),
            rule=SIPDispatchRule(
                dispatch_rule_direct=SIPDispatchRuleDirect(room_name="flat-room", pin=pin)
            ),
        )
    )
    resources.rule_ids.append(created.sip_dispatch_rule_id)
    assert created.rule.dispatch_rule_direct.pin == pin


async def test_same_pin_both_wildcard_conflicts_with_invalid_argument(
    resources: Resources,
) -> None:
    pin = unique_pin()
    holder = await resources.rule(direct_rule(pin, name=unique_name("holder")))
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(direct_rule(pin))
    assert (err.value.status, err.value.code) == (400, "invalid_argument")
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name=holder.name)


async def test_same_pin_on_a_shared_trunk_conflicts(resources: Resources) -> None:
    pin = unique_pin()
    t1, t2, t3 = (await resources.trunk(), await resources.trunk(), await resources.trunk())
    holder = await resources.rule(
        direct_rule(pin, trunk_ids=[t1.sip_trunk_id, t2.sip_trunk_id], name=unique_name("h"))
    )
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(direct_rule(pin, trunk_ids=[t2.sip_trunk_id, t3.sip_trunk_id]))
    assert err.value.code == "invalid_argument"
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name=holder.name)


async def test_conflict_message_shows_blank_name_placeholder(resources: Resources) -> None:
    pin = unique_pin()
    holder = await resources.rule(direct_rule(pin, name=""))
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(direct_rule(pin))
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name="<blank name>")


async def test_same_pin_on_disjoint_trunks_does_not_conflict(resources: Resources) -> None:
    pin = unique_pin()
    t1, t2 = await resources.trunk(), await resources.trunk()
    await resources.rule(direct_rule(pin, trunk_ids=[t1.sip_trunk_id]))
    second = await resources.rule(direct_rule(pin, trunk_ids=[t2.sip_trunk_id]))
    assert second.sip_dispatch_rule_id.startswith("SDR_")


async def test_wildcard_and_specific_with_same_pin_do_not_conflict(
    resources: Resources,
) -> None:
    pin = unique_pin()
    trunk = await resources.trunk()
    wildcard = await resources.rule(direct_rule(pin))
    specific = await resources.rule(direct_rule(pin, trunk_ids=[trunk.sip_trunk_id]))
    assert wildcard.sip_dispatch_rule_id != specific.sip_dispatch_rule_id


async def test_different_pins_do_not_conflict(resources: Resources) -> None:
    first = await resources.rule(direct_rule(unique_pin()))
    second = await resources.rule(direct_rule(unique_pin()))
    assert first.sip_dispatch_rule_id != second.sip_dispatch_rule_id


async def test_list_filters_by_rule_ids(lk: api.LiveKitAPI, resources: Resources) -> None:
    a = await resources.rule(direct_rule(unique_pin()))
    await resources.rule(direct_rule(unique_pin()))
    listed = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(dispatch_rule_ids=[a.sip_dispatch_rule_id])
    )
    assert [r.sip_dispatch_rule_id for r in listed.items] == [a.sip_dispatch_rule_id]


async def test_list_by_trunk_ids_returns_intersecting_and_wildcard_rules(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    t1, t2, t3 = (await resources.trunk(), await resources.trunk(), await resources.trunk())
    on_t1 = await resources.rule(direct_rule(unique_pin(), trunk_ids=[t1.sip_trunk_id]))
    on_t1_t2 = await resources.rule(
        direct_rule(unique_pin(), trunk_ids=[t1.sip_trunk_id, t2.sip_trunk_id])
    )
    on_t3 = await resources.rule(direct_rule(unique_pin(), trunk_ids=[t3.sip_trunk_id]))
    wildcard = await resources.rule(direct_rule(unique_pin()))
    listed = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(trunk_ids=[t2.sip_trunk_id, t1.sip_trunk_id])
    )
    ids = {r.sip_dispatch_rule_id for r in listed.items}
    assert {on_t1.sip_dispatch_rule_id, on_t1_t2.sip_dispatch_rule_id} <= ids
    assert wildcard.sip_dispatch_rule_id in ids
    assert on_t3.sip_dispatch_rule_id not in ids


async def test_list_items_are_sorted_by_id(lk: api.LiveKitAPI, resources: Resources) -> None:
    created = [await resources.rule(direct_rule(unique_pin())) for _ in range(4)]
    ids = [r.sip_dispatch_rule_id for r in created]
    listed = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest(dispatch_rule_ids=ids))
    assert [r.sip_dispatch_rule_id for r in listed.items] == sorted(ids)


async def test_list_pages_with_after_id_and_limit(lk: api.LiveKitAPI, resources: Resources) -> None:
    created = [await resources.rule(direct_rule(unique_pin())) for _ in range(5)]
    ids = sorted(r.sip_dispatch_rule_id for r in created)
    pages: list[list[str]] = []
    after = ""
    while True:
        page = await lk.sip.list_dispatch_rule(
            ListSIPDispatchRuleRequest(
                dispatch_rule_ids=ids, page=Pagination(after_id=after, limit=2)
            )
        )
        if not page.items:
            break
        pages.append([r.sip_dispatch_rule_id for r in page.items])
        after = page.items[-1].sip_dispatch_rule_id
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]


async def test_delete_returns_the_rule_and_removes_it(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    rule = await resources.rule(direct_rule(unique_pin()))
    deleted = await lk.sip.delete_dispatch_rule(
        DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
    )
    assert deleted.sip_dispatch_rule_id == rule.sip_dispatch_rule_id
    listed = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(dispatch_rule_ids=[rule.sip_dispatch_rule_id])
    )
    assert list(listed.items) == []


async def test_deleting_frees_the_pin_for_a_new_rule(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    pin = unique_pin()
    rule = await resources.rule(direct_rule(pin))
    await lk.sip.delete_dispatch_rule(
        DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
    )
    again = await resources.rule(direct_rule(pin))
    assert again.sip_dispatch_rule_id != rule.sip_dispatch_rule_id


async def test_delete_unknown_id_is_not_found(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_" + unique_name("gone"))
        )
    assert (err.value.status, err.value.code) == (404, "not_found")


async def test_delete_empty_id_is_invalid_argument(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=""))
    assert (err.value.status, err.value.code) == (400, "invalid_argument")


async def test_update_replace_swaps_the_whole_rule(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    rule = await resources.rule(direct_rule(unique_pin(), room="before", name="before"))
    new_pin = unique_pin()
    updated = await lk.sip.update_dispatch_rule(
        rule.sip_dispatch_rule_id, direct_rule(new_pin, room="after", name="after")
    )
    assert updated.sip_dispatch_rule_id == rule.sip_dispatch_rule_id
    assert (updated.name, updated.rule.dispatch_rule_direct.room_name) == ("after", "after")
    assert updated.rule.dispatch_rule_direct.pin == new_pin


async def test_update_fields_changes_only_given_fields(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    info = direct_rule(unique_pin(), room="kept-room", name="old-name")
    info.metadata = "kept-metadata"
    rule = await resources.rule(info)
    updated = await lk.sip.update_dispatch_rule_fields(rule.sip_dispatch_rule_id, name="new-name")
    assert updated.name == "new-name"
    assert updated.metadata == "kept-metadata"
    assert updated.rule.dispatch_rule_direct == rule.rule.dispatch_rule_direct


async def test_update_fields_adds_trunk_ids(lk: api.LiveKitAPI, resources: Resources) -> None:
    t1, t2 = await resources.trunk(), await resources.trunk()
    rule = await resources.rule(direct_rule(unique_pin(), trunk_ids=[t1.sip_trunk_id]))
    updated = await lk.sip.update_dispatch_rule_fields(
        rule.sip_dispatch_rule_id, trunk_ids=ListUpdate(add=[t2.sip_trunk_id])
    )
    assert sorted(updated.trunk_ids) == sorted([t1.sip_trunk_id, t2.sip_trunk_id])


async def test_update_replace_into_a_conflict_is_invalid_argument(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    taken = unique_pin()
    holder = await resources.rule(direct_rule(taken, name=unique_name("holder")))
    rule = await resources.rule(direct_rule(unique_pin()))
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule(rule.sip_dispatch_rule_id, direct_rule(taken))
    assert err.value.code == "invalid_argument"
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name=holder.name)


async def test_update_fields_into_a_conflict_is_invalid_argument(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    taken = unique_pin()
    holder = await resources.rule(direct_rule(taken, name=unique_name("holder")))
    rule = await resources.rule(direct_rule(unique_pin()))
    new_rule = SIPDispatchRule(
        dispatch_rule_direct=SIPDispatchRuleDirect(room_name="any", pin=taken)
    )
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule_fields(rule.sip_dispatch_rule_id, rule=new_rule)
    assert err.value.code == "invalid_argument"
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name=holder.name)


async def test_failed_update_leaves_the_rule_unchanged(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    taken = unique_pin()
    await resources.rule(direct_rule(taken))
    own_pin = unique_pin()
    rule = await resources.rule(direct_rule(own_pin))
    with pytest.raises(api.TwirpError):
        await lk.sip.update_dispatch_rule(rule.sip_dispatch_rule_id, direct_rule(taken))
    listed = await lk.sip.list_dispatch_rule(
        ListSIPDispatchRuleRequest(dispatch_rule_ids=[rule.sip_dispatch_rule_id])
    )
    assert [r.rule.dispatch_rule_direct.pin for r in listed.items] == [own_pin]


async def test_update_keeping_its_own_pin_is_not_a_conflict_with_itself(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    pin = unique_pin()
    rule = await resources.rule(direct_rule(pin, name="one"))
    updated = await lk.sip.update_dispatch_rule(rule.sip_dispatch_rule_id, direct_rule(pin))
    assert updated.rule.dispatch_rule_direct.pin == pin


async def test_update_unknown_id_is_not_found(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule("SDR_" + unique_name("gone"), direct_rule(unique_pin()))
    assert (err.value.status, err.value.code) == (404, "not_found")
