"""Fuzzing the live gateway: schemathesis over its own OpenAPI document (no 5xx, answers match the
schema), and hypothesis-generated LiveKit webhook bodies and headers (no 5xx, only the documented
statuses). Example counts are bounded so the whole file runs in seconds.

Both run the hypothesis engine in a worker thread, since the gateway, the worker and Temporal's
client all live on the test's event loop, which must keep running to answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from tests.fixtures.gateway import API_TOKEN, GatewayStack, Reply, sign_webhook

T = TypeVar("T")
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
EXAMPLES_PER_OPERATION = 20
WEBHOOK_EXAMPLES = 400


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a failure here is reproducible
        suppress_health_check=list(HealthCheck),
    )


def on_loop(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the test's event loop from the hypothesis thread, and wait for it."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)


# --- schemathesis over /openapi.json ----------------------------------------------------------


async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    gw: GatewayStack,
) -> None:
    spec = (await gw.gateway.get("/openapi.json")).json
    schema = schemathesis.openapi.from_dict(spec)
    base_url = gw.gateway.url

    def fuzz() -> list[str]:
        tested = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # every operation in the document loads
            operation = result.ok()
            raw = operation.definition.raw
            fuzz_operation(operation, GenerationMode.POSITIVE, base_url)
            if raw.get("parameters") or raw.get("requestBody"):  # else nothing can be invalid
                fuzz_operation(operation, GenerationMode.NEGATIVE, base_url)
            tested.append(operation.label)
        return tested

    tested = await asyncio.to_thread(fuzz)

    assert len(tested) == 10


def fuzz_operation(operation: Operation, mode: GenerationMode, base_url: str) -> None:
    secured = bool(operation.definition.raw.get("security"))
    auth = {"Authorization": f"Bearer {API_TOKEN}"} if secured else {}

    @fuzz_settings(EXAMPLES_PER_OPERATION)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case[Any]) -> None:
        # Every built-in check but one: "ends_at after starts_at" cannot be said in JSON Schema,
        # so a schema-valid schedule may rightly be refused with 400.
        case.call_and_validate(
            base_url=base_url, headers=auth, excluded_checks=[positive_data_acceptance]
        )

    check()


# --- hypothesis over webhooks -----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
HANDLED = ["room_started", "room_finished", "participant_joined", "participant_left"]
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def valid_or(valid: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `valid`, sometimes one of the odd forms: so that most events get deep into the
    handler and the odd field is the only thing wrong with them."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda normal: valid if normal else st.one_of(*odd)
    )


@st.composite
def webhook_events(draw: st.DrawFn) -> dict[str, Any]:
    room = valid_or(
        st.fixed_dictionaries(
            {
                "name": valid_or(st.uuids().map(str), st.text(max_size=40), st.just("a" * 200)),
                "sid": valid_or(st.just("RM_fuzz"), st.text(max_size=150)),
            },
            optional={"numParticipants": st.integers(), "metadata": st.text(max_size=20)},
        ),
        json_values,
    )
    event = {
        "event": valid_or(st.sampled_from(HANDLED), st.text(max_size=20)),
        "id": valid_or(st.uuids().map(lambda u: f"EV_{u.hex[:12]}"), st.text(max_size=150)),
        "createdAt": valid_or(
            st.integers(min_value=1, max_value=2**32),
            st.sampled_from([0, -1, 10**12, 2**63 - 1, -(2**63)]),
            int64,
            int64.map(str),
            json_values,
        ),
        "room": room,
        "participant": st.dictionaries(st.text(max_size=10), json_values, max_size=3),
        "unknownField": json_values,
    }
    dropped = draw(st.sets(st.sampled_from(sorted(event)), max_size=2))
    return {key: draw(value) for key, value in event.items() if key not in dropped}


async def test_signed_generated_webhook_events_get_200_or_400_never_5xx(gw: GatewayStack) -> None:
    loop = asyncio.get_running_loop()
    registered = str(uuid.uuid4())
    assert (await gw.gateway.api("PUT", f"/rooms/{registered}")).status == 200
    statuses: set[int] = set()

    @fuzz_settings(WEBHOOK_EXAMPLES)
    @given(event=webhook_events(), use_registered_room=st.booleans())
    def check(event: dict[str, Any], use_registered_room: bool) -> None:
        if use_registered_room and isinstance(event.get("room"), dict):
            event["room"]["name"] = registered
        body = json.dumps(event)
        reply: Reply = on_loop(loop, gw.gateway.signed_webhook(body))
        statuses.add(reply.status)
        assert reply.status in {200, 400}, (reply.status, reply.json, body)
        if reply.status == 200:
            assert reply.json["status"] in {"processed", "ignored"}

    await asyncio.to_thread(check)

    assert statuses == {200, 400}


async def test_generated_bodies_and_authorization_headers_get_4xx_never_5xx(
    gw: GatewayStack,
) -> None:
    loop = asyncio.get_running_loop()
    headers = st.one_of(
        st.none(),
        # Whatever a client can put in a header: latin-1, no control characters.
        st.text(st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=60),
        st.sampled_from(["Bearer", "Bearer ", "bearer x.y.z", "Basic Zm9vOmJhcg=="]),
        st.just("SIGNED"),  # replaced by a valid signature of the body
        st.just("SIGNED_OTHER"),  # a valid signature of another body
    )
    bodies = st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()))

    @fuzz_settings(WEBHOOK_EXAMPLES)
    @given(body=bodies, header=headers)
    def check(body: bytes, header: str | None) -> None:
        if header == "SIGNED":
            header = sign_webhook(body)
        elif header == "SIGNED_OTHER":
            header = sign_webhook(body + b" ")
        reply: Reply = on_loop(loop, gw.gateway.webhook(body, header))
        assert reply.status in {200, 400, 401}, (reply.status, reply.json, body, header)
        assert isinstance(reply.json, dict)

    await asyncio.to_thread(check)
