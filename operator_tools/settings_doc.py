"""The settings reference: one line per variable, rendered as the README's table.

`meet-telephony config --markdown` prints the table; `tests/test_cli.py` checks that the
README holds exactly that table and that every `Settings` field is described here, so the
documentation cannot drift from the code.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Final

from pydantic import AliasChoices
from pydantic_core import PydanticUndefined

from telephony.settings import Settings

SEED: Final = "La Suite Meet"
ADDED: Final = "added"

# variable (field name) -> (meaning, origin)
DESCRIPTIONS: Final[dict[str, tuple[str, str]]] = {
    "room_telephony_enabled": ("Turn phone dial-in on; needs the LIVEKIT_* credentials", SEED),
    "room_telephony_pin_length": ("Digits in a room PIN (4-16)", SEED),
    "room_telephony_pin_max_retries": (
        "PIN draws before registration fails with `pin_space_exhausted`",
        SEED,
    ),
    "room_telephony_phone_number": ("The dial-in number shown in invitations", SEED),
    "room_telephony_default_country": (
        "ISO 3166 region for numbers written without `+` and for national formatting",
        SEED,
    ),
    "room_telephony_phone_numbers": ("More dial-in numbers, comma-separated", ADDED),
    "room_telephony_trunk_ids": (
        "LiveKit inbound trunks the dispatch rules apply to (empty: every trunk)",
        ADDED,
    ),
    "room_telephony_discover_numbers": (
        "Also show the numbers of the LiveKit inbound trunks (refreshed every minute)",
        ADDED,
    ),
    "room_telephony_hide_phone_number": (
        "Hide callers' numbers from other participants (name keeps the last 4 digits)",
        ADDED,
    ),
    "room_telephony_sentinel_rule": (
        "Keep one sentinel rule on the trunks, so that callers always hear the PIN prompt "
        "(LiveKit SIP leaves a call unanswered when no rule applies)",
        ADDED,
    ),
    "room_telephony_dispatch_mode": (
        "`while_active`: rule only while a session is live; `always`: while registered",
        ADDED,
    ),
    "room_telephony_schedule_lead": (
        "How early a scheduled window opens phone access (seconds or ISO 8601)",
        ADDED,
    ),
    "room_telephony_liveness_interval": (
        "How often a live session checks that the LiveKit room still exists",
        ADDED,
    ),
    "room_telephony_max_session_duration": (
        "A session older than this is closed regardless of webhooks",
        ADDED,
    ),
    "livekit_url": ("LiveKit server URL (alias `LIVEKIT_API_URL`)", SEED),
    "livekit_api_key": ("LiveKit API key", SEED),
    "livekit_api_secret": ("LiveKit API secret (secret)", SEED),
    "livekit_webhook_events_filter_regex": (
        "Only webhooks whose room name matches this regex are handled",
        SEED,
    ),
    "temporal_address": ("Temporal frontend `host:port`", ADDED),
    "temporal_namespace": ("Temporal namespace", ADDED),
    "temporal_api_key": ("Temporal Cloud API key (secret; turns TLS on)", ADDED),
    "temporal_tls": ("Force TLS on or off towards Temporal", ADDED),
    "temporal_tls_client_cert_path": ("mTLS client certificate file", ADDED),
    "temporal_tls_client_key_path": ("mTLS client key file", ADDED),
    "temporal_tls_server_ca_cert_path": ("CA bundle for Temporal's certificate", ADDED),
    "temporal_tls_server_name": ("TLS server name override", ADDED),
    "telephony_task_queue": ("Temporal task queue of the worker", ADDED),
    "telephony_api_token": ("Bearer token of the gateway's `/api/v1` (secret)", ADDED),
    "telephony_gateway_host": ("Gateway listen address", ADDED),
    "telephony_gateway_port": ("Gateway listen port", ADDED),
    "telephony_worker_metrics_port": (
        "Worker Prometheus port (Temporal SDK metrics); unset: off",
        ADDED,
    ),
    "telephony_reconcile_interval": (
        "Period of the reconciliation (rules, sessions, leases)",
        ADDED,
    ),
    "telephony_reconcile_page_size": (
        "Rules, rooms or leases one reconciliation step handles (one activity call)",
        ADDED,
    ),
    "telephony_reconcile_pages_per_run": (
        "Steps before a reconciliation run continues as new (keeps its history short)",
        ADDED,
    ),
    "telephony_reconcile_concurrency": (
        "Concurrent LiveKit/Temporal calls inside one reconciliation step",
        ADDED,
    ),
    "telephony_reconcile_lease_grace": (
        "Age a PIN lease must reach before reconciliation may release it as unlisted",
        ADDED,
    ),
    "telephony_pin_hash_key": (
        "Key of the HMAC that turns a PIN into its lease's workflow id; required when enabled "
        "(secret, 32+ characters; changing it orphans every lease)",
        ADDED,
    ),
    "telephony_payload_keys": (
        "AES-256-GCM keys of the payloads Temporal stores, `id:base64` comma list, the first "
        "encrypts; required when enabled (secret)",
        ADDED,
    ),
    "telephony_codec_token": (
        "Bearer token of the gateway's codec endpoint `/codec` for the Temporal UI and CLI; "
        "unset: no endpoint (secret)",
        ADDED,
    ),
    "telephony_codec_cors_origins": (
        "Browser origins (the Temporal UI) allowed to call the codec endpoint, comma-separated",
        ADDED,
    ),
    "log_level": ("DEBUG, INFO, WARNING, ERROR or CRITICAL", ADDED),
    "log_format": ("`text` or `json` (one object per line)", ADDED),
}


def variable_names(field: str) -> list[str]:
    """The environment variable(s) for a field: its name, then any alias."""
    info = Settings.model_fields[field]
    names = [field.upper()]
    if isinstance(info.validation_alias, AliasChoices):
        for choice in info.validation_alias.choices:
            if str(choice).upper() not in names:
                names.append(str(choice).upper())
    return names


def default_text(field: str) -> str:
    info = Settings.model_fields[field]
    if info.default_factory is not None:
        value: object = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if value is None or value == []:
        return "(unset)"
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())} s"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def markdown_table() -> str:
    rows = ["| variable | default | meaning | from |", "|---|---|---|---|"]
    for field in Settings.model_fields:
        meaning, origin = DESCRIPTIONS[field]
        names = " / ".join(f"`{n}`" for n in variable_names(field))
        rows.append(f"| {names} | {default_text(field)} | {meaning} | {origin} |")
    return "\n".join(rows)
