"""Dispatch rules: creation, LiveKit's conflict validation (and which rule its message names),
list filters and pages, delete, update. PINs, numbers and names are unique per test and ids are
compared only among the test's own rules or computed from a listing, so a shared server with
leftovers is fine."""

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
    SIPDispatchRuleInfo,
)

from tests.conformance.conftest import (
    Resources,
    direct_rule,
    id_just_below,
    post_json,
    rule_sorting_before,
    rule_sorting_first,
    token,
    unique_name,
    unique_pin,
)
from tests.fixtures.livekit import LiveKitTarget

CONFLICT = (
    "Dispatch rule for the same trunk, inbound number, number, and PIN combination "
    'already exists in dispatch rule "{id}" "{name}"'
)


async def _ids(lk: api.LiveKitAPI, request: ListSIPDispatchRuleRequest) -> list[str]:
    return [r.sip_dispatch_rule_id for r in (await lk.sip.list_dispatch_rule(request)).items]


async def _holder_first_on_trunk(
    resources: Resources, pin: str, trunk_id: str, name: str
) -> SIPDispatchRuleInfo:
    """A rule on `trunk_id` with `pin` whose id is the lowest of the rules listed for that trunk
    (which include every wildcard rule)."""
    return await rule_sorting_first(
        resources,
        lambda: direct_rule(pin, trunk_ids=[trunk_id], name=name),
        lambda: _ids(resources.lk, ListSIPDispatchRuleRequest(trunk_ids=[trunk_id])),
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
    await resources.rule(direct_rule(pin))
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(direct_rule(pin))
    assert (err.value.status, err.value.code) == (400, "invalid_argument")
    assert err.value.message.startswith(CONFLICT.split('"{id}"')[0])


async def test_same_pin_on_a_shared_trunk_conflicts(resources: Resources) -> None:
    pin = unique_pin()
    t1, t2, t3 = (await resources.trunk(), await resources.trunk(), await resources.trunk())
    await resources.rule(direct_rule(pin, trunk_ids=[t1.sip_trunk_id, t2.sip_trunk_id]))
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(direct_rule(pin, trunk_ids=[t2.sip_trunk_id, t3.sip_trunk_id]))
    assert err.value.code == "invalid_argument"


async def test_create_conflict_names_the_holder_when_it_is_the_first_candidate(
    resources: Resources,
) -> None:
    pin, trunk = unique_pin(), await resources.trunk()
    holder = await _holder_first_on_trunk(resources, pin, trunk.sip_trunk_id, unique_name("h"))
    with pytest.raises(api.TwirpError) as err:
        # The flat form: its trunk_ids select the candidates, so the holder comes first.
        await resources.flat_rule(direct_rule(pin, trunk_ids=[trunk.sip_trunk_id]))
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name=holder.name)


async def test_conflict_message_shows_blank_name_placeholder(resources: Resources) -> None:
    pin, trunk = unique_pin(), await resources.trunk()
    holder = await _holder_first_on_trunk(resources, pin, trunk.sip_trunk_id, name="")
    with pytest.raises(api.TwirpError) as err:
        await resources.flat_rule(direct_rule(pin, trunk_ids=[trunk.sip_trunk_id]))
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name="<blank name>")


async def test_create_conflict_names_the_new_rule_when_another_candidate_sorts_first(
    resources: Resources,
) -> None:
    pin = unique_pin()
    await rule_sorting_before(
        resources, lambda: resources.rule(direct_rule(pin, name=unique_name("holder")))
    )
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(direct_rule(pin, name="newcomer"))
    assert err.value.message == CONFLICT.format(id="<new>", name="newcomer")


async def test_create_candidates_come_from_the_flat_trunk_ids_only(
    resources: Resources,
) -> None:
    pin, trunk, other = unique_pin(), await resources.trunk(), await resources.trunk()
    await rule_sorting_before(
        resources,
        lambda: _holder_first_on_trunk(resources, pin, trunk.sip_trunk_id, unique_name("h")),
        [other.sip_trunk_id],
    )
    with pytest.raises(api.TwirpError) as err:
        # The dispatch_rule form leaves the flat trunk_ids empty: every rule is a candidate.
        await resources.rule(direct_rule(pin, trunk_ids=[trunk.sip_trunk_id], name="newcomer"))
    assert err.value.message == CONFLICT.format(id="<new>", name="newcomer")


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


async def test_list_page_limit_does_not_limit_the_answer(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    for _ in range(5):
        await resources.rule(direct_rule(unique_pin()))
    everything = await _ids(lk, ListSIPDispatchRuleRequest())
    limited = await _ids(lk, ListSIPDispatchRuleRequest(page=Pagination(limit=2)))
    assert limited == everything


async def test_list_after_id_returns_every_rule_after_it(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    ids = sorted(
        [(await resources.rule(direct_rule(unique_pin()))).sip_dispatch_rule_id for _ in range(4)]
    )
    after = await _ids(lk, ListSIPDispatchRuleRequest(page=Pagination(after_id=ids[1], limit=1)))
    assert [i for i in after if i in ids] == ids[2:]
    assert all(i > ids[1] for i in after)


async def test_list_with_filter_and_page_stops_at_the_first_window_without_a_match(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    a, _b, c = sorted(
        [(await resources.rule(direct_rule(unique_pin()))).sip_dispatch_rule_id for _ in range(3)]
    )
    unpaged = await _ids(lk, ListSIPDispatchRuleRequest(dispatch_rule_ids=[a, c]))
    # Windows of one id: [a] matches, the next id (b or a leftover) does not: the walk stops.
    paged = await _ids(
        lk,
        ListSIPDispatchRuleRequest(
            dispatch_rule_ids=[a, c], page=Pagination(after_id=id_just_below(a), limit=1)
        ),
    )
    assert (unpaged, paged) == ([a, c], [a])


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
    await resources.rule(direct_rule(taken))
    rule = await resources.rule(direct_rule(unique_pin()))
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule(rule.sip_dispatch_rule_id, direct_rule(taken))
    assert (err.value.status, err.value.code) == (400, "invalid_argument")


async def _two_rules_by_id(resources: Resources) -> tuple[SIPDispatchRuleInfo, SIPDispatchRuleInfo]:
    first = await resources.rule(direct_rule(unique_pin(), name=unique_name("one")))
    second = await resources.rule(direct_rule(unique_pin(), name=unique_name("two")))
    low, high = sorted([first, second], key=lambda r: r.sip_dispatch_rule_id)
    return low, high


def _with_pin(rule: SIPDispatchRuleInfo, pin: str) -> SIPDispatchRule:
    room = rule.rule.dispatch_rule_direct.room_name
    return SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin))


async def test_update_conflict_names_the_holder_when_its_id_is_lower(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    holder, updated = await _two_rules_by_id(resources)
    taken = holder.rule.dispatch_rule_direct.pin
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule_fields(
            updated.sip_dispatch_rule_id, rule=_with_pin(updated, taken)
        )
    assert err.value.message == CONFLICT.format(id=holder.sip_dispatch_rule_id, name=holder.name)


async def test_update_conflict_names_the_updated_rule_when_its_id_is_lower(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    updated, holder = await _two_rules_by_id(resources)
    taken = holder.rule.dispatch_rule_direct.pin
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule_fields(
            updated.sip_dispatch_rule_id, rule=_with_pin(updated, taken)
        )
    assert err.value.message == CONFLICT.format(id=updated.sip_dispatch_rule_id, name=updated.name)


async def test_update_adding_a_shared_trunk_is_a_conflict(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    pin, t1, t2 = unique_pin(), await resources.trunk(), await resources.trunk()
    await resources.rule(direct_rule(pin, trunk_ids=[t1.sip_trunk_id]))
    rule = await resources.rule(direct_rule(pin, trunk_ids=[t2.sip_trunk_id]))
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule_fields(
            rule.sip_dispatch_rule_id, trunk_ids=ListUpdate(add=[t1.sip_trunk_id])
        )
    assert err.value.code == "invalid_argument"


async def test_update_setting_trunks_is_checked_only_against_the_stored_trunks(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    # The candidates are listed with the new trunk ids, which the stored rule (on t2) does not
    # match: the updated rule is not validated, and two rules end up holding the same key.
    pin, t1, t2 = unique_pin(), await resources.trunk(), await resources.trunk()
    await resources.rule(direct_rule(pin, trunk_ids=[t1.sip_trunk_id]))
    rule = await resources.rule(direct_rule(pin, trunk_ids=[t2.sip_trunk_id]))
    updated = await lk.sip.update_dispatch_rule_fields(
        rule.sip_dispatch_rule_id, trunk_ids=ListUpdate(set=[t1.sip_trunk_id])
    )
    assert list(updated.trunk_ids) == [t1.sip_trunk_id]


async def test_conflicting_stored_rules_make_every_create_listing_them_fail(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    pin, t1, t2 = unique_pin(), await resources.trunk(), await resources.trunk()
    first = await resources.rule(direct_rule(pin, trunk_ids=[t1.sip_trunk_id], name="first"))
    second = await resources.rule(direct_rule(pin, trunk_ids=[t2.sip_trunk_id], name="second"))
    await lk.sip.update_dispatch_rule_fields(
        second.sip_dispatch_rule_id, trunk_ids=ListUpdate(set=[t1.sip_trunk_id])
    )
    earlier = min([first, second], key=lambda r: r.sip_dispatch_rule_id)
    with pytest.raises(api.TwirpError) as err:
        # A wildcard rule with a fresh PIN: every rule is a candidate, the pair collides.
        await resources.rule(direct_rule(unique_pin()))
    assert err.value.message == CONFLICT.format(id=earlier.sip_dispatch_rule_id, name=earlier.name)


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


# --- what create and update validate (and what they do not) -----------------------------------


async def test_create_without_a_rule_is_missing_rule(resources: Resources) -> None:
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(SIPDispatchRuleInfo(name=unique_name("no-rule")))
    assert (err.value.code, err.value.message) == ("invalid_argument", "missing rule")


async def test_create_with_an_empty_rule_kind_is_unsupported(resources: Resources) -> None:
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(SIPDispatchRuleInfo(rule=SIPDispatchRule()))
    assert (err.value.code, err.value.message) == (
        "invalid_argument",
        "twirp error unknown: unsupported SIP Dispatch Rule: <nil>",
    )


async def test_create_with_a_rule_id_is_invalid_argument(resources: Resources) -> None:
    info = direct_rule(unique_pin())
    info.sip_dispatch_rule_id = "SDR_" + unique_name("preset")
    with pytest.raises(api.TwirpError) as err:
        await resources.rule(info)
    assert (err.value.code, err.value.message) == ("invalid_argument", "rule id must not be set")


@pytest.mark.parametrize(
    ("room", "pin", "trunk_ids"),
    [
        pytest.param("", None, [], id="empty-room-name"),
        pytest.param(None, "12ab", [], id="pin-with-letters"),
        pytest.param(None, "1" * 20, [], id="twenty-digit-pin"),
        pytest.param(None, None, ["ST_doesnotexist"], id="unknown-trunk-id"),
    ],
)
async def test_create_accepts_what_livekit_does_not_validate(
    resources: Resources, room: str | None, pin: str | None, trunk_ids: list[str]
) -> None:
    # A fresh suffix keeps the letter/long PINs unique on a shared server.
    pin = pin + unique_pin() if pin else unique_pin()
    info = direct_rule(pin, trunk_ids=trunk_ids)
    if room is not None:
        info.rule.dispatch_rule_direct.room_name = room
    created = await resources.rule(info)
    assert created.rule.dispatch_rule_direct == info.rule.dispatch_rule_direct


async def test_create_leaves_created_at_unset(resources: Resources) -> None:
    created = await resources.rule(direct_rule(unique_pin()))
    assert not created.HasField("created_at")
    assert not created.HasField("updated_at")


async def test_delete_empty_id_message(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=""))
    assert err.value.message == "dispatch rule ID is required"


async def test_delete_unknown_id_message(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.delete_dispatch_rule(
            DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id="SDR_" + unique_name("gone"))
        )
    assert err.value.message == "requested sip dispatch rule does not exist"


async def test_update_empty_id_is_rule_id_must_be_set(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule("", direct_rule(unique_pin()))
    assert (err.value.code, err.value.message) == ("invalid_argument", "rule id must be set")


async def test_update_without_an_action_is_invalid_argument(
    livekit_target: LiveKitTarget, resources: Resources
) -> None:
    rule = await resources.rule(direct_rule(unique_pin()))
    status, _, body = await post_json(
        livekit_target,
        "/twirp/livekit.SIP/UpdateSIPDispatchRule",
        {"sip_dispatch_rule_id": rule.sip_dispatch_rule_id},
        token(livekit_target, sip=api.SIPGrants(admin=True)),
    )
    assert (status, body["code"], body["msg"]) == (
        400,
        "invalid_argument",
        "missing or unsupported update action",
    )


async def test_update_replace_with_another_rule_id_is_invalid_argument(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    rule = await resources.rule(direct_rule(unique_pin()))
    other = direct_rule(unique_pin())
    other.sip_dispatch_rule_id = "SDR_" + unique_name("other")
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule(rule.sip_dispatch_rule_id, other)
    assert err.value.message == "rule id in the info must be empty or match the id in the update"


async def test_update_replace_without_a_rule_is_missing_rule_even_for_an_unknown_id(
    lk: api.LiveKitAPI,
) -> None:
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule("SDR_" + unique_name("gone"), SIPDispatchRuleInfo())
    assert (err.value.code, err.value.message) == ("invalid_argument", "missing rule")


async def test_update_fields_merges_attributes(lk: api.LiveKitAPI, resources: Resources) -> None:
    info = direct_rule(unique_pin())
    info.attributes["a"] = "1"
    rule = await resources.rule(info)
    updated = await lk.sip.update_dispatch_rule_fields(
        rule.sip_dispatch_rule_id, attributes={"b": "2"}
    )
    assert dict(updated.attributes) == {"a": "1", "b": "2"}


async def test_update_fields_empty_attribute_value_removes_the_key(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    info = direct_rule(unique_pin())
    info.attributes.update({"a": "1", "b": "2"})
    rule = await resources.rule(info)
    updated = await lk.sip.update_dispatch_rule_fields(
        rule.sip_dispatch_rule_id, attributes={"a": ""}
    )
    assert dict(updated.attributes) == {"b": "2"}


async def test_update_fields_with_an_empty_list_update_is_invalid_argument(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    rule = await resources.rule(direct_rule(unique_pin()))
    with pytest.raises(api.TwirpError) as err:
        await lk.sip.update_dispatch_rule_fields(rule.sip_dispatch_rule_id, trunk_ids=ListUpdate())
    assert (err.value.code, err.value.message) == (
        "invalid_argument",
        "unsupported list update operation",
    )


async def test_update_fields_removing_the_last_trunk_makes_a_wildcard(
    lk: api.LiveKitAPI, resources: Resources
) -> None:
    trunk = await resources.trunk()
    rule = await resources.rule(direct_rule(unique_pin(), trunk_ids=[trunk.sip_trunk_id]))
    updated = await lk.sip.update_dispatch_rule_fields(
        rule.sip_dispatch_rule_id, trunk_ids=ListUpdate(remove=[trunk.sip_trunk_id])
    )
    assert list(updated.trunk_ids) == []
