"""Configuration: the README's settings table as executable specification.

Every documented variable exists with its documented default; a bad value stops start-up with
one line that starts with the variable's name, says what is wrong, and never echoes a secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from telephony.models import DispatchMode
from telephony.settings import LogFormat, Settings, SettingsError, load_settings
from tests.fixtures import keys

SECRET = "s3cr3t-livekit-value-0123456789"
API_TOKEN = "t0ken-backend-value-9876543210"
TEMPORAL_KEY = "t3mporal-key-value-5555555555"

_PREFIXES = ("ROOM_TELEPHONY_", "LIVEKIT_", "TEMPORAL_", "TELEPHONY_", "LOG_")

# The README's settings table, with the defaults it states.
DOCUMENTED_DEFAULTS: dict[str, Any] = {
    "ROOM_TELEPHONY_ENABLED": False,
    "ROOM_TELEPHONY_PIN_LENGTH": 10,
    "ROOM_TELEPHONY_PIN_MAX_RETRIES": 5,
    "ROOM_TELEPHONY_PHONE_NUMBER": None,
    "ROOM_TELEPHONY_DEFAULT_COUNTRY": "US",
    "ROOM_TELEPHONY_PHONE_NUMBERS": [],
    "ROOM_TELEPHONY_TRUNK_IDS": [],  # empty = every trunk
    "ROOM_TELEPHONY_HIDE_PHONE_NUMBER": False,
    "ROOM_TELEPHONY_DISPATCH_MODE": DispatchMode.WHILE_ACTIVE,
    "LIVEKIT_URL": None,
    "LIVEKIT_API_KEY": None,
    "LIVEKIT_API_SECRET": None,
    "LIVEKIT_WEBHOOK_EVENTS_FILTER_REGEX": None,
    "TELEPHONY_TASK_QUEUE": "meet-telephony",
    "TELEPHONY_API_TOKEN": None,
    "TELEPHONY_GATEWAY_HOST": "127.0.0.1",
    "TELEPHONY_GATEWAY_PORT": 8080,
    "LOG_FORMAT": LogFormat.TEXT,
}
# Documented without a default value: they must exist and the default must be usable.
DOCUMENTED_DURATIONS = [
    "ROOM_TELEPHONY_SCHEDULE_LEAD",
    "ROOM_TELEPHONY_LIVENESS_INTERVAL",
    "ROOM_TELEPHONY_MAX_SESSION_DURATION",
    "TELEPHONY_RECONCILE_INTERVAL",
]
DOCUMENTED_OTHERS = [
    "TELEPHONY_WORKER_METRICS_PORT",
    "LOG_LEVEL",
    # TEMPORAL_*: Temporal's own conventions (docs/ARCHITECTURE.md, "Moving parts").
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
]
ALL_DOCUMENTED = [*DOCUMENTED_DEFAULTS, *DOCUMENTED_DURATIONS, *DOCUMENTED_OTHERS]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start every test from an environment with none of the service's variables."""
    for key in list(os.environ):
        if key.upper().startswith(_PREFIXES):
            monkeypatch.delenv(key)
    yield


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recognisable secrets that must never show up in an error message."""
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    monkeypatch.setenv("TELEPHONY_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("TEMPORAL_API_KEY", TEMPORAL_KEY)


def enable_with_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_ENABLED", "true")
    monkeypatch.setenv("LIVEKIT_URL", "https://livekit.example.org")
    monkeypatch.setenv("LIVEKIT_API_KEY", "APIkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    for name, value in keys.ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


def rejection(variable: str) -> str:
    """Load the settings, expect them refused, check the message's shape; return it."""
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: "), message
    assert "\n" not in message and "\r" not in message, message
    for secret in (SECRET, API_TOKEN, TEMPORAL_KEY):
        assert secret not in message, message
    return message


# --- every documented variable exists, with its default ---------------------------------------


@pytest.mark.parametrize("variable", ALL_DOCUMENTED)
def test_documented_variable_is_a_settings_field(variable: str) -> None:
    assert variable.lower() in Settings.model_fields


@pytest.mark.parametrize(("variable", "default"), DOCUMENTED_DEFAULTS.items())
def test_documented_default(variable: str, default: Any) -> None:
    assert getattr(load_settings(), variable.lower()) == default


@pytest.mark.parametrize("variable", DOCUMENTED_DURATIONS)
def test_duration_default_is_a_positive_or_zero_timedelta(variable: str) -> None:
    value = getattr(load_settings(), variable.lower())
    assert isinstance(value, timedelta)
    assert value >= timedelta(0)


def test_defaults_load_without_any_environment() -> None:
    settings = load_settings()
    assert settings.log_level == "INFO"
    assert settings.telephony_worker_metrics_port is None


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("ROOM_TELEPHONY_PIN_LENGTH", "12", 12),
        ("ROOM_TELEPHONY_PIN_MAX_RETRIES", "9", 9),
        ("ROOM_TELEPHONY_DEFAULT_COUNTRY", "fr", "FR"),
        ("ROOM_TELEPHONY_HIDE_PHONE_NUMBER", "1", True),
        ("ROOM_TELEPHONY_DISPATCH_MODE", "always", DispatchMode.ALWAYS),
        ("ROOM_TELEPHONY_SCHEDULE_LEAD", "PT15M", timedelta(minutes=15)),
        ("LIVEKIT_WEBHOOK_EVENTS_FILTER_REGEX", "^[0-9a-f-]+$", "^[0-9a-f-]+$"),
        ("TELEPHONY_TASK_QUEUE", "other-queue", "other-queue"),
        ("TELEPHONY_GATEWAY_HOST", "0.0.0.0", "0.0.0.0"),
        ("TELEPHONY_GATEWAY_PORT", "9090", 9090),
        ("TELEPHONY_WORKER_METRICS_PORT", "9464", 9464),
        ("TEMPORAL_ADDRESS", "temporal:7233", "temporal:7233"),
        ("TEMPORAL_NAMESPACE", "meet", "meet"),
        ("LOG_LEVEL", "debug", "DEBUG"),
        ("LOG_FORMAT", "json", LogFormat.JSON),
    ],
)
def test_variable_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, expected: Any
) -> None:
    monkeypatch.setenv(variable, raw)
    assert getattr(load_settings(), variable.lower()) == expected


def test_secrets_are_read_but_not_shown_in_repr(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    settings = load_settings()
    assert settings.livekit_api_secret is not None
    assert settings.livekit_api_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


# --- accepted forms ---------------------------------------------------------------------------


def test_livekit_api_url_is_an_alias_of_livekit_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_URL", "https://livekit.example.org/")
    assert load_settings().livekit_url == "https://livekit.example.org"


def test_livekit_api_url_alias_satisfies_enabled_requirements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enable_with_credentials(monkeypatch)
    monkeypatch.delenv("LIVEKIT_URL")
    monkeypatch.setenv("LIVEKIT_API_URL", "wss://livekit.example.org")
    assert load_settings().livekit_url == "wss://livekit.example.org"


def test_trunk_ids_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_TRUNK_IDS", " ST_a, ST_b,,ST_c ,")
    assert load_settings().room_telephony_trunk_ids == ["ST_a", "ST_b", "ST_c"]


def test_phone_numbers_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBERS", "+33 1 23 45 67 89, +1 415 555 2671")
    assert load_settings().room_telephony_phone_numbers == ["+33 1 23 45 67 89", "+1 415 555 2671"]


def test_configured_phone_numbers_put_the_single_number_first_without_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBER", "+1 415 555 2671")
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBERS", "+33 1 23 45 67 89,+1 415 555 2671")
    assert load_settings().configured_phone_numbers == ["+1 415 555 2671", "+33 1 23 45 67 89"]


def test_national_format_number_is_accepted_for_its_default_country(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_DEFAULT_COUNTRY", "FR")
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBER", "01 23 45 67 89")
    assert load_settings().room_telephony_phone_number == "01 23 45 67 89"


@pytest.mark.parametrize("raw", ["300", "PT5M", "pt5m", "300.0", " PT300S "])
def test_durations_accept_seconds_and_iso_8601(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_LIVENESS_INTERVAL", raw)
    assert load_settings().room_telephony_liveness_interval == timedelta(minutes=5)


def test_iso_8601_duration_with_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_MAX_SESSION_DURATION", "P1DT2H")
    assert load_settings().room_telephony_max_session_duration == timedelta(days=1, hours=2)


def test_schedule_lead_may_be_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_SCHEDULE_LEAD", "0")
    assert load_settings().room_telephony_schedule_lead == timedelta(0)


def test_enabled_with_full_credentials_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    enable_with_credentials(monkeypatch)
    assert load_settings().room_telephony_enabled is True


# --- rejections: one line, variable first, no secret ------------------------------------------


def test_pin_length_below_four_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PIN_LENGTH", "3")
    assert "greater than or equal to 4" in rejection("ROOM_TELEPHONY_PIN_LENGTH")


def test_pin_length_above_sixteen_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PIN_LENGTH", "17")
    assert "less than or equal to 16" in rejection("ROOM_TELEPHONY_PIN_LENGTH")


def test_non_integer_pin_length_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PIN_LENGTH", "ten")
    assert "integer" in rejection("ROOM_TELEPHONY_PIN_LENGTH")


def test_unparseable_phone_number_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBER", "call us")
    assert "'call us'" in rejection("ROOM_TELEPHONY_PHONE_NUMBER")


def test_national_number_of_another_country_is_rejected_for_the_default_country(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    # A French national-format number means nothing with the default country US.
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBER", "01 23 45 67 89")
    assert "'01 23 45 67 89'" in rejection("ROOM_TELEPHONY_PHONE_NUMBER")


def test_invalid_entry_of_phone_numbers_is_rejected_and_named(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_PHONE_NUMBERS", "+33 1 23 45 67 89, 12345")
    message = rejection("ROOM_TELEPHONY_PHONE_NUMBERS")
    assert "'12345'" in message
    assert "+33 1 23 45 67 89" not in message


def test_unknown_dispatch_mode_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_DISPATCH_MODE", "sometimes")
    message = rejection("ROOM_TELEPHONY_DISPATCH_MODE")
    assert "while_active" in message and "always" in message


def test_malformed_webhook_filter_regex_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("LIVEKIT_WEBHOOK_EVENTS_FILTER_REGEX", "^(room-")
    assert "regular expression" in rejection("LIVEKIT_WEBHOOK_EVENTS_FILTER_REGEX")


def test_missing_api_secret_is_rejected_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    enable_with_credentials(monkeypatch)
    monkeypatch.delenv("LIVEKIT_API_SECRET")
    monkeypatch.setenv("TELEPHONY_API_TOKEN", API_TOKEN)
    assert "ROOM_TELEPHONY_ENABLED" in rejection("LIVEKIT_API_SECRET")


def test_empty_api_secret_is_rejected_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    enable_with_credentials(monkeypatch)
    monkeypatch.setenv("LIVEKIT_API_SECRET", "")
    assert "required" in rejection("LIVEKIT_API_SECRET")


def test_missing_livekit_url_is_rejected_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    enable_with_credentials(monkeypatch)
    monkeypatch.delenv("LIVEKIT_URL")
    assert "required" in rejection("LIVEKIT_URL")


def test_missing_api_key_is_rejected_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    enable_with_credentials(monkeypatch)
    monkeypatch.delenv("LIVEKIT_API_KEY")
    assert "required" in rejection("LIVEKIT_API_KEY")


def test_livekit_credentials_are_optional_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_ENABLED", "false")
    assert load_settings().livekit_api_secret is None


def test_bad_livekit_url_is_reported_under_the_alias_that_was_set(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("LIVEKIT_API_URL", "livekit.example.org")
    assert "URL" in rejection("LIVEKIT_API_URL")


def test_unparseable_duration_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_LIVENESS_INTERVAL", "5 minutes")
    assert "not a duration" in rejection("ROOM_TELEPHONY_LIVENESS_INTERVAL")


@pytest.mark.parametrize("raw", ["inf", "1e300", "P999999999999D"])
def test_out_of_range_duration_is_a_one_line_rejection(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None, raw: str
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_MAX_SESSION_DURATION", raw)
    assert repr(raw) in rejection("ROOM_TELEPHONY_MAX_SESSION_DURATION")


def test_year_duration_is_rejected(monkeypatch: pytest.MonkeyPatch, secrets_in_env: None) -> None:
    monkeypatch.setenv("TELEPHONY_RECONCILE_INTERVAL", "P1Y")
    assert "not a duration" in rejection("TELEPHONY_RECONCILE_INTERVAL")


@pytest.mark.parametrize("raw", ["0", "-5"])
def test_non_positive_interval_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None, raw: str
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_LIVENESS_INTERVAL", raw)
    assert "positive" in rejection("ROOM_TELEPHONY_LIVENESS_INTERVAL")


def test_unknown_default_country_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_DEFAULT_COUNTRY", "XX")
    assert "'XX'" in rejection("ROOM_TELEPHONY_DEFAULT_COUNTRY")


def test_rejected_value_with_a_newline_still_gives_one_line(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("ROOM_TELEPHONY_SCHEDULE_LEAD", "PT5M\nPT6M")
    rejection("ROOM_TELEPHONY_SCHEDULE_LEAD")


@pytest.mark.parametrize(
    "raw", ["nohostport", "temporal:", ":7233", "temporal:0", "temporal:65536", "temporal:port"]
)
def test_temporal_address_that_is_not_host_and_port_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None, raw: str
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", raw)
    assert "host:port" in rejection("TEMPORAL_ADDRESS")


def test_temporal_address_with_a_scheme_is_rejected(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "http://temporal:7233")
    assert "host:port" in rejection("TEMPORAL_ADDRESS")


@pytest.mark.parametrize("raw", ["[::1]:7233", "temporal.example.org:443", "10.0.0.7:65535"])
def test_temporal_address_accepts_names_and_ip_addresses(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", raw)
    assert load_settings().temporal_address == raw


def test_a_malformed_livekit_url_is_rejected_without_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "ftp://lkuser:lk-password-value@livekit.example.org")
    assert "lk-password-value" not in rejection("LIVEKIT_URL")


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("ROOM_TELEPHONY_MAX_SESSION_DURATION", "P32D"),
        ("ROOM_TELEPHONY_LIVENESS_INTERVAL", "P2D"),
        ("ROOM_TELEPHONY_SCHEDULE_LEAD", "P8D"),
        ("ROOM_TELEPHONY_MAX_SESSION_DURATION", "99999999999"),
    ],
)
def test_durations_a_room_acts_on_are_bounded(
    monkeypatch: pytest.MonkeyPatch, secrets_in_env: None, variable: str, raw: str
) -> None:
    # Room workflows add these to dates: unbounded, they could overflow inside a workflow task.
    monkeypatch.setenv(variable, raw)
    assert rejection(variable)
