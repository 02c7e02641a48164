"""The emulator's dispatch-rule store: a create costs the same whatever the number of stored
rules, and still answers exactly as LiveKit's full validation walk would."""

from __future__ import annotations

import random
import string

import pytest
from google.protobuf.json_format import MessageToDict
from livekit.protocol.models import ListUpdate
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    DeleteSIPDispatchRuleRequest,
    ListSIPDispatchRuleRequest,
    ListSIPDispatchRuleResponse,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPDispatchRuleUpdate,
    UpdateSIPDispatchRuleRequest,
)

from livekit_emulator.sip import SipStore
from livekit_emulator.twirp import TwirpError


def rule(pin: str, trunk_ids: list[str] | None = None, name: str = "") -> SIPDispatchRuleInfo:
    return SIPDispatchRuleInfo(
        name=name,
        trunk_ids=trunk_ids or [],
        rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="r", pin=pin)),
    )


def create(store: SipStore, info: SIPDispatchRuleInfo, rule_id: str | None = None) -> str:
    request = CreateSIPDispatchRuleRequest(dispatch_rule=info)
    return store.create_dispatch_rule(request, rule_id=rule_id).sip_dispatch_rule_id


def set_trunks(store: SipStore, rule_id: str, trunk_ids: list[str]) -> None:
    """A field-wise `set` of trunk ids: LiveKit does not validate it against the stored trunks."""
    store.update_dispatch_rule(
        UpdateSIPDispatchRuleRequest(
            sip_dispatch_rule_id=rule_id,
            update=SIPDispatchRuleUpdate(trunk_ids=ListUpdate(set=trunk_ids)),
        )
    )


def delete(store: SipStore, rule_id: str) -> None:
    store.delete_dispatch_rule(DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))


def ids(store: SipStore) -> list[str]:
    return [r.sip_dispatch_rule_id for r in store.sorted_rules()]


def conflicting_pair(store: SipStore) -> tuple[str, str]:
    first = create(store, rule("1234", ["T1"]), rule_id="SDR_aaaaaaaaaaaa")
    second = create(store, rule("1234", ["T2"]), rule_id="SDR_bbbbbbbbbbbb")
    set_trunks(store, second, ["T1"])
    return first, second


def forbid_walks(monkeypatch: pytest.MonkeyPatch, store: SipStore) -> None:
    def walk(_req: ListSIPDispatchRuleRequest) -> ListSIPDispatchRuleResponse:
        raise AssertionError("the stored rules were listed")

    monkeypatch.setattr(store, "list_dispatch_rules", walk)


def test_create_without_a_conflict_does_not_walk_the_stored_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = SipStore()
    for pin in range(100):
        create(store, rule(f"{pin:04d}"))
    forbid_walks(monkeypatch, store)
    create(store, rule("9999"))
    assert len(store.rules) == 101


def test_create_with_a_taken_key_is_refused() -> None:
    store = SipStore()
    create(store, rule("1234"), rule_id="SDR_000000000000")
    with pytest.raises(TwirpError, match='"SDR_000000000000"'):
        create(store, rule("1234"))


def test_a_rule_listing_a_trunk_twice_conflicts_with_itself() -> None:
    with pytest.raises(TwirpError, match='"<new>" "twice"'):
        create(SipStore(), rule("1234", ["T1", "T1"], name="twice"))


def test_a_stored_conflicting_pair_refuses_unrelated_creates() -> None:
    store = SipStore()
    first, _ = conflicting_pair(store)
    with pytest.raises(TwirpError, match=f'"{first}"'):
        create(store, rule("5678"))


def test_deleting_one_of_a_conflicting_pair_makes_creates_cheap_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = SipStore()
    first, _ = conflicting_pair(store)
    delete(store, first)
    forbid_walks(monkeypatch, store)
    create(store, rule("5678"))
    assert len(store.rules) == 2


def test_a_stored_rule_without_a_kind_refuses_creates_until_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = SipStore()
    broken = create(store, rule("1234", ["T2"]))
    # A field-wise update onto other trunks is not validated, so an empty rule kind is stored.
    store.update_dispatch_rule(
        UpdateSIPDispatchRuleRequest(
            sip_dispatch_rule_id=broken,
            update=SIPDispatchRuleUpdate(trunk_ids=ListUpdate(set=["T1"]), rule=SIPDispatchRule()),
        )
    )
    with pytest.raises(TwirpError, match="unsupported SIP Dispatch Rule"):
        create(store, rule("5678"))
    delete(store, broken)
    forbid_walks(monkeypatch, store)
    create(store, rule("5678"))


def test_rules_are_listed_by_id_after_creates_and_deletes() -> None:
    store = SipStore()
    for rule_id in ("SDR_c", "SDR_a", "SDR_d", "SDR_b"):
        create(store, rule(rule_id), rule_id=rule_id)
    delete(store, "SDR_c")
    listed = store.list_dispatch_rules(ListSIPDispatchRuleRequest()).items
    assert [r.sip_dispatch_rule_id for r in listed] == ["SDR_a", "SDR_b", "SDR_d"]
    assert ids(store) == ["SDR_a", "SDR_b", "SDR_d"]


class WalkingStore(SipStore):
    """The reference: every create walks the stored rules, as LiveKit does."""

    def _create_cannot_conflict(self, info: SIPDispatchRuleInfo) -> bool:
        return False


def random_rule(rng: random.Random) -> SIPDispatchRuleInfo:
    info = rule(rng.choice(["1", "2", "3"]), name=rng.choice(["", "a", "b"]))
    info.trunk_ids.extend(rng.choice([[], [], ["T1"], ["T2"], ["T1", "T2"], ["T1", "T1"]]))
    info.inbound_numbers.extend(rng.choice([[], [], ["+331"], ["331"]]))
    if rng.random() < 0.03:
        info.rule.Clear()
        info.rule.SetInParent()  # a rule without a kind
    return info


def random_operation(rng: random.Random, store: SipStore) -> tuple[str, object]:
    """One create (either request form), field-wise update or delete, as a replayable value."""
    existing = ids(store)
    choice = rng.random()
    if existing and choice < 0.15:
        return "delete", rng.choice(existing)
    if existing and choice < 0.35:
        update = SIPDispatchRuleUpdate()
        if rng.random() < 0.5:
            update.trunk_ids.CopyFrom(ListUpdate(set=rng.choice([["T1"], ["T2"], ["T1", "T2"]])))
        if rng.random() < 0.5:
            update.rule.CopyFrom(random_rule(rng).rule)
        if not update.ListFields():
            update.name = "renamed"
        return "update", UpdateSIPDispatchRuleRequest(
            sip_dispatch_rule_id=rng.choice(existing), update=update
        )
    info = random_rule(rng)
    if rng.random() < 0.3:
        # The flat form: its trunk ids also pick the candidates of the walk.
        request = CreateSIPDispatchRuleRequest(
            trunk_ids=info.trunk_ids, rule=info.rule, name=info.name
        )
    else:
        request = CreateSIPDispatchRuleRequest(dispatch_rule=info)
    rule_id = "SDR_" + "".join(rng.choice(string.ascii_letters) for _ in range(12))
    return "create", (request, rule_id)


def apply(store: SipStore, operation: tuple[str, object]) -> object:
    kind, value = operation
    try:
        if kind == "delete":
            assert isinstance(value, str)
            delete(store, value)
            return None
        if kind == "update":
            assert isinstance(value, UpdateSIPDispatchRuleRequest)
            return MessageToDict(store.update_dispatch_rule(value))
        assert isinstance(value, tuple)
        request, rule_id = value
        return MessageToDict(store.create_dispatch_rule(request, rule_id=rule_id))
    except TwirpError as exc:
        return (exc.code, exc.msg)


@pytest.mark.parametrize("seed", range(20))
def test_creates_answer_exactly_as_the_full_walk(seed: int) -> None:
    rng = random.Random(seed)
    fast, walking = SipStore(), WalkingStore()
    for step in range(200):
        operation = random_operation(rng, walking)
        assert apply(fast, operation) == apply(walking, operation), (seed, step, operation)
    assert ids(fast) == ids(walking)
