"""`meet-telephony doctor`: what stands between this configuration and a working dial-in.

Each check prints one line, `ok` or `fail` (or `skip` when an earlier failure makes it
meaningless), and for a failure the fix. Exit 0 when nothing failed, 1 otherwise, 2 when the
settings do not even load (then the report is that one failed check).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Final

import aiohttp
import phonenumbers
from livekit.protocol.sip import ListSIPInboundTrunkRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities import dispatch_rules
from activities.livekit_client import create_livekit_api
from activities.livekit_errors import classify
from operator_tools.console import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_json, spinner, table
from telephony import contracts
from telephony.dialin import parse_phone_number
from telephony.settings import Settings, redacted_url, reveal
from telephony.temporal import connect_temporal, temporal_connection_problem
from worker.search_attributes import missing_search_attributes

OK: Final = "ok"
FAIL: Final = "fail"
SKIP: Final = "skip"
TIMEOUT_SECONDS: Final = 5.0
CREDENTIALS_REJECTED: Final = "credentials rejected: check LIVEKIT_API_KEY/SECRET"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


async def check_temporal(settings: Settings) -> tuple[list[Check], Client | None]:
    """Reachable and namespace present; then the search attributes. Returns the client too."""
    address, namespace = settings.temporal_address, settings.temporal_namespace
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            client = await connect_temporal(settings)
    except (RuntimeError, TimeoutError, OSError) as exc:
        reason = temporal_connection_problem(exc)
        return [
            Check(
                "temporal",
                FAIL,
                f"Temporal at {address} unreachable ({reason})",
                "start Temporal (`meet-telephony dev`) or fix TEMPORAL_ADDRESS / TLS settings",
            ),
            Check("search attributes", SKIP, "Temporal unreachable"),
        ], None
    checks: list[Check] = []
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace)
            )
        checks.append(Check("temporal", OK, f"{address}, namespace {namespace}"))
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            fix = f"create it: temporal operator namespace create --namespace {namespace}"
            detail = f"namespace {namespace} not found on {address}"
        else:
            fix, detail = "check TEMPORAL_NAMESPACE and the credentials", exc.message
        return [
            *checks,
            Check("temporal", FAIL, detail, fix),
            Check("search attributes", SKIP, "no namespace"),
        ], None
    except TimeoutError:
        return [
            Check("temporal", FAIL, f"{address} did not answer in {TIMEOUT_SECONDS:g}s", ""),
            Check("search attributes", SKIP, "Temporal unreachable"),
        ], None
    wanted = [key.name for key in contracts.SEARCH_ATTRIBUTES]
    try:
        missing = await missing_search_attributes(client)
    except RPCError as exc:
        checks.append(Check("search attributes", SKIP, f"cannot list them ({exc.message})"))
        return checks, client
    if missing:
        checks.append(
            Check(
                "search attributes",
                FAIL,
                f"missing: {', '.join(missing)}",
                "start the worker once (it registers them), or: "
                + "; ".join(
                    f"temporal operator search-attribute create --name {n} --type Keyword"
                    for n in missing
                ),
            )
        )
    else:
        checks.append(Check("search attributes", OK, ", ".join(wanted)))
    return checks, client


async def check_livekit(settings: Settings) -> list[Check]:
    """Reachable, credentials accepted, SIP available, trunks owning the configured numbers."""
    names = ["livekit", "credentials", "sip", "trunks"]
    url = settings.livekit_http_url
    if not url or not settings.livekit_api_key or not settings.livekit_api_secret:
        unset = "LIVEKIT_URL" if not url else "LIVEKIT_API_KEY/SECRET"
        return [Check(names[0], FAIL, f"{unset} not set", f"set {unset}")] + [
            Check(n, SKIP, "LiveKit not configured") for n in names[1:]
        ]
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as http,
            http.get(f"{url}/") as response,
        ):
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [
            Check(
                names[0],
                FAIL,
                f"{redacted_url(str(settings.livekit_url))} unreachable ({type(exc).__name__})",
                "check LIVEKIT_URL",
            )
        ] + [Check(n, SKIP, "LiveKit unreachable") for n in names[1:]]
    checks = [Check("livekit", OK, redacted_url(str(settings.livekit_url)))]

    # The worker's own client and error classifier: doctor sees LiveKit as the activities do.
    lk = create_livekit_api(settings)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            listing = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())
            trunks = list(listing.items)
    except Exception as exc:
        failure = classify(exc, "ListSIPInboundTrunk")
        if failure is None:
            raise
        if failure.type == contracts.LIVEKIT_CREDENTIALS_REJECTED:
            return [
                *checks,
                Check(
                    "credentials",
                    FAIL,
                    CREDENTIALS_REJECTED,
                    "use the key pair from LiveKit's `keys` configuration",
                ),
                Check("sip", SKIP, "credentials rejected"),
                Check("trunks", SKIP, "credentials rejected"),
            ]
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            return [
                *checks,
                Check("credentials", FAIL, f"SIP list call failed ({type(exc).__name__})", ""),
                Check("sip", SKIP, "LiveKit did not answer"),
                Check("trunks", SKIP, "LiveKit did not answer"),
            ]
        # The token passed LiveKit's auth middleware: it is the SIP service that failed.
        return [
            *checks,
            Check("credentials", OK, f"accepted (key {settings.livekit_api_key})"),
            Check(
                "sip",
                FAIL,
                failure.message,
                "run LiveKit SIP and give LiveKit server Redis (SIP needs both)",
            ),
            Check("trunks", SKIP, "SIP unavailable"),
        ]
    finally:
        await lk.aclose()
    checks.append(Check("credentials", OK, f"accepted (key {settings.livekit_api_key})"))
    checks.append(Check("sip", OK, f"{len(trunks)} inbound trunk(s)"))

    region = settings.room_telephony_default_country
    wanted_ids = set(settings.room_telephony_trunk_ids)
    if wanted_ids:
        unknown = wanted_ids - {t.sip_trunk_id for t in trunks}
        if unknown:
            checks.append(
                Check(
                    "trunks",
                    FAIL,
                    f"ROOM_TELEPHONY_TRUNK_IDS names unknown trunks: {', '.join(sorted(unknown))}",
                    "fix ROOM_TELEPHONY_TRUNK_IDS (lk sip inbound list shows the ids)",
                )
            )
            return checks
        trunks = [t for t in trunks if t.sip_trunk_id in wanted_ids]

    def e164(value: str) -> str:
        try:
            return phonenumbers.format_number(
                parse_phone_number(value, region), phonenumbers.PhoneNumberFormat.E164
            )
        except ValueError:
            return value

    owned = {e164(n) for t in trunks for n in t.numbers}
    configured = settings.configured_phone_numbers
    missing = [n for n in configured if e164(n) not in owned]
    if not trunks:
        checks.append(
            Check(
                "trunks",
                FAIL,
                "no inbound trunk",
                "create an inbound trunk owning your numbers (lk sip inbound create)",
            )
        )
    elif missing:
        checks.append(
            Check(
                "trunks",
                FAIL,
                f"no inbound trunk owns {', '.join(missing)} (trunks own: "
                f"{', '.join(sorted(owned)) or 'no number'})",
                "add the number to an inbound trunk, or fix ROOM_TELEPHONY_PHONE_NUMBER(S)",
            )
        )
    elif not configured:
        checks.append(
            Check(
                "trunks",
                OK,
                f"trunks own {', '.join(sorted(owned)) or 'no number'}; no number configured "
                "(set ROOM_TELEPHONY_PHONE_NUMBER to show one in invitations)",
            )
        )
    else:
        checks.append(Check("trunks", OK, f"{', '.join(configured)} owned by an inbound trunk"))
    return checks


async def check_sentinel(settings: Settings) -> Check:
    """The sentinel rule LiveKit should hold (callers always hear the PIN prompt)."""
    name = "sentinel rule"
    if not settings.room_telephony_sentinel_rule:
        return Check(
            name,
            OK,
            "off (ROOM_TELEPHONY_SENTINEL_RULE=false): with no room open, LiveKit SIP leaves "
            "calls unanswered",
        )
    if not reveal(settings.telephony_pin_hash_key):
        return Check(name, SKIP, "TELEPHONY_PIN_HASH_KEY not set")
    pin, trunk_ids = settings.sentinel_pin(), settings.room_telephony_trunk_ids
    lk = create_livekit_api(settings)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS * 3):
            rules = await dispatch_rules.list_rules_after(lk.sip, "")
    except Exception as exc:
        failure = classify(exc, "ListSIPDispatchRule")
        if failure is None:
            raise
        return Check(name, FAIL, f"rules could not be listed: {failure.message}", "")
    finally:
        await lk.aclose()
    held = [
        r.sip_dispatch_rule_id for r in rules if dispatch_rules.is_sentinel_for(r, pin, trunk_ids)
    ]
    if not held:
        return Check(
            name,
            FAIL,
            "missing: with no room open, LiveKit SIP leaves calls unanswered",
            "start the worker (it creates it at start) or run `meet-telephony reconcile`",
        )
    return Check(name, OK, f"{held[0]} (callers always hear the PIN prompt)")


async def check_gateway(settings: Settings, gateway_url: str | None) -> Check:
    base = (
        gateway_url or f"http://{settings.telephony_gateway_host}:{settings.telephony_gateway_port}"
    ).rstrip("/")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as http,
            http.get(f"{base}/healthz") as response,
        ):
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check(
            "webhook url",
            FAIL,
            f"{base}/healthz unreachable ({type(exc).__name__})",
            "start the gateway (`meet-telephony gateway`) or pass --gateway-url; LiveKit's "
            f"webhook URL must be {base}/livekit/webhook",
        )
    if status != 200:
        return Check("webhook url", FAIL, f"{base}/healthz answered {status}", "see gateway logs")
    return Check("webhook url", OK, f"{base}/livekit/webhook (gateway healthy)")


async def diagnose(settings: Settings, gateway_url: str | None = None) -> list[Check]:
    checks = [
        Check(
            "settings",
            OK,
            "valid"
            + ("" if settings.room_telephony_enabled else " (ROOM_TELEPHONY_ENABLED is false)"),
        )
    ]
    async with spinner("checking Temporal, LiveKit and the gateway"):
        (temporal_checks, _client), livekit_checks, gateway_check = await asyncio.gather(
            check_temporal(settings), check_livekit(settings), check_gateway(settings, gateway_url)
        )
    sip_ready = any(c.name == "sip" and c.status == OK for c in livekit_checks)
    sentinel_check = (
        await check_sentinel(settings)
        if sip_ready
        else Check("sentinel rule", SKIP, "LiveKit SIP not checked")
    )
    return [*checks, *temporal_checks, *livekit_checks, sentinel_check, gateway_check]


async def run_doctor(settings: Settings, *, gateway_url: str | None, as_json: bool) -> int:
    checks = await diagnose(settings, gateway_url)
    failed = any(c.status == FAIL for c in checks)
    _print_report(checks, as_json)
    return EXIT_FAILURE if failed else EXIT_OK


def report_bad_settings(message: str, *, as_json: bool) -> int:
    """The report when the settings do not even load (`message` names the variable): the same
    shape as any other report, so `doctor --json` always prints one document."""
    check = Check(
        "settings",
        FAIL,
        message,
        "give that variable a valid value (`meet-telephony config --markdown` describes each)",
    )
    _print_report([check], as_json, error="bad_settings", message=message)
    return EXIT_USAGE


def _print_report(checks: list[Check], as_json: bool, **extra: str) -> None:
    if as_json:
        failed = any(c.status == FAIL for c in checks)
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks], **extra})
        return
    rows = []
    for c in checks:
        rows.append((c.status, c.name, c.detail))
        if c.fix and c.status == FAIL:
            rows.append(("", "", f"fix: {c.fix}"))
    print(table(["", "CHECK", "RESULT"], rows))
