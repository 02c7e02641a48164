"""The service's configuration: one model, read from the environment, checked at start-up.

Every variable is listed, with its default and meaning, in the README's settings table (generated
from this model by `meet-telephony config --markdown`). A bad value stops the process with one
line that names the variable (`SettingsError`), never a traceback.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import phonenumbers
from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from telephony.codec import PayloadKeys
from telephony.contracts import DEFAULT_TASK_QUEUE
from telephony.dialin import parse_phone_number
from telephony.durations import parse_duration
from telephony.models import (
    MAX_LIVENESS_INTERVAL,
    MAX_SCHEDULE_LEAD,
    MAX_SESSION_DURATION,
    DispatchMode,
    ReconcileInput,
    RoomPolicy,
)
from telephony.pins import MIN_PIN_HASH_KEY_LENGTH, PinLength, lease_workflow_id, sentinel_pin


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _split_list(value: Any) -> Any:
    """Comma-separated environment values become lists; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _duration(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    return value


CsvList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]


# `host:port`, `[v6]:port`; no scheme (Temporal's target host is not a URL).
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+):(?P<port>[0-9]{1,5})")

# Durations for which 0 means something (no lead time, no grace).
_ZERO_OK = frozenset({"room_telephony_schedule_lead", "telephony_reconcile_lease_grace"})


class SettingsError(Exception):
    """A setting is invalid. `str()` is one line naming the variable and the reason."""


class Settings(BaseSettings):
    """Every environment variable of the service. Attribute names are the variables, lowercased."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # Seed options (same names and meanings as La Suite Meet).
    room_telephony_enabled: bool = False
    room_telephony_pin_length: PinLength = 10
    room_telephony_pin_max_retries: int = Field(default=5, ge=1, le=100)
    room_telephony_phone_number: str | None = None
    room_telephony_default_country: str = "US"

    # Added here.
    room_telephony_phone_numbers: CsvList = Field(default_factory=list)
    room_telephony_trunk_ids: CsvList = Field(default_factory=list)
    room_telephony_discover_numbers: bool = False
    room_telephony_hide_phone_number: bool = False
    room_telephony_sentinel_rule: bool = True
    room_telephony_dispatch_mode: DispatchMode = DispatchMode.WHILE_ACTIVE
    room_telephony_schedule_lead: Duration = Field(
        default=timedelta(minutes=10), le=MAX_SCHEDULE_LEAD
    )
    room_telephony_liveness_interval: Duration = Field(
        default=timedelta(minutes=5), le=MAX_LIVENESS_INTERVAL
    )
    room_telephony_max_session_duration: Duration = Field(
        default=timedelta(hours=24), le=MAX_SESSION_DURATION
    )

    livekit_url: str | None = Field(
        default=None, validation_alias=AliasChoices("livekit_url", "livekit_api_url")
    )
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None
    livekit_webhook_events_filter_regex: str | None = None

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool | None = None
    temporal_tls_client_cert_path: str | None = None
    temporal_tls_client_key_path: str | None = None
    temporal_tls_server_ca_cert_path: str | None = None
    temporal_tls_server_name: str | None = None

    telephony_task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)
    telephony_api_token: SecretStr | None = None
    telephony_pin_hash_key: SecretStr | None = None
    telephony_payload_keys: SecretStr | None = None
    telephony_codec_token: SecretStr | None = None
    telephony_codec_cors_origins: CsvList = Field(default_factory=list)
    telephony_gateway_host: str = "127.0.0.1"
    telephony_gateway_port: int = Field(default=8080, ge=0, le=65535)
    telephony_worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    telephony_reconcile_interval: Duration = timedelta(minutes=5)
    telephony_reconcile_page_size: int = Field(default=1000, ge=1, le=10_000)
    telephony_reconcile_pages_per_run: int = Field(default=100, ge=1, le=1000)
    telephony_reconcile_concurrency: int = Field(default=20, ge=1, le=500)
    telephony_reconcile_lease_grace: Duration = timedelta(minutes=10)

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    @field_validator("room_telephony_default_country")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not an ISO 3166 region known to phonenumbers")
        return region

    @field_validator("livekit_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^(https?|wss?)://[^/\s]+", value):
            # Masked: a URL may carry user:password@, and this line goes to logs.
            raise ValueError(f"{redacted_url(value)!r} is not an http(s):// or ws(s):// URL")
        return value.rstrip("/")

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        # Temporal's client only fails at connect time, with a transport error that names
        # neither the variable nor the expected form; say it at start instead.
        match = _HOST_PORT.fullmatch(value.strip())
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise ValueError(
                f"{value!r} is not host:port with a port 1-65535 (e.g. 127.0.0.1:7233)"
            )
        return value.strip()

    @field_validator("livekit_webhook_events_filter_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @field_validator(
        "room_telephony_schedule_lead",
        "room_telephony_liveness_interval",
        "room_telephony_max_session_duration",
        "telephony_reconcile_interval",
        "telephony_reconcile_lease_grace",
    )
    @classmethod
    def _positive(cls, value: timedelta, info: Any) -> timedelta:
        if value < timedelta(0) or (value == timedelta(0) and info.field_name not in _ZERO_OK):
            raise ValueError("must be a positive duration")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"{value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _phone_numbers_parse(self) -> Settings:
        for variable, values in (
            ("room_telephony_phone_number", [self.room_telephony_phone_number]),
            ("room_telephony_phone_numbers", self.room_telephony_phone_numbers),
        ):
            for value in values:
                if value:
                    try:
                        parse_phone_number(value, self.room_telephony_default_country)
                    except ValueError as exc:
                        raise _FieldError(variable, str(exc)) from None
        return self

    @field_validator("telephony_pin_hash_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_PIN_HASH_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_PIN_HASH_KEY_LENGTH} characters "
                "(e.g. `openssl rand -base64 32`)"
            )
        return value

    @field_validator("telephony_payload_keys")
    @classmethod
    def _payload_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            PayloadKeys.parse(value.get_secret_value())  # PayloadKeyError never quotes a key
        return value

    @model_validator(mode="after")
    def _secrets_when_enabled(self) -> Settings:
        # A PIN must be readable neither in a workflow id nor in a payload at rest.
        if self.room_telephony_enabled:
            for name in ("telephony_pin_hash_key", "telephony_payload_keys"):
                if not reveal(getattr(self, name)):
                    raise _FieldError(name, "required when ROOM_TELEPHONY_ENABLED is true")
        return self

    @model_validator(mode="after")
    def _livekit_credentials_when_enabled(self) -> Settings:
        if self.room_telephony_enabled:
            if not self.livekit_url:
                raise _FieldError(
                    "livekit_url",
                    "required (or its alias LIVEKIT_API_URL) when ROOM_TELEPHONY_ENABLED is true",
                )
            if not self.livekit_api_key:
                raise _FieldError("livekit_api_key", "required when ROOM_TELEPHONY_ENABLED is true")
            if not reveal(self.livekit_api_secret):
                raise _FieldError(
                    "livekit_api_secret", "required when ROOM_TELEPHONY_ENABLED is true"
                )
        return self

    @property
    def configured_phone_numbers(self) -> list[str]:
        """The single seed number first, then the list, without repeats."""
        numbers = [self.room_telephony_phone_number, *self.room_telephony_phone_numbers]
        return list(dict.fromkeys(n for n in numbers if n))

    @property
    def livekit_http_url(self) -> str | None:
        """LIVEKIT_URL over HTTP: LiveKit URLs may be ws(s)://, its HTTP API is the same place."""
        return http_url(self.livekit_url) if self.livekit_url else None

    @property
    def payload_keys(self) -> PayloadKeys | None:
        text = reveal(self.telephony_payload_keys)
        return PayloadKeys.parse(text) if text else None

    def pin_lease_id(self, pin: str) -> str:
        """The workflow id of `pin`'s lease (a keyed hash: no id reveals a PIN)."""
        return lease_workflow_id(pin, reveal(self.telephony_pin_hash_key))

    def sentinel_pin(self) -> str:
        """The sentinel rule's PIN (derived from the PIN hash key; no room can lease it)."""
        return sentinel_pin(reveal(self.telephony_pin_hash_key))

    def reconcile_input(self) -> ReconcileInput:
        """How a reconciliation pass pages (the schedule and `meet-telephony reconcile`)."""
        return ReconcileInput(
            page_size=self.telephony_reconcile_page_size,
            pages_per_run=self.telephony_reconcile_pages_per_run,
        )

    def room_policy(self) -> RoomPolicy:
        """The settings a room workflow acts on (workflows cannot read the environment)."""
        return RoomPolicy(
            enabled=self.room_telephony_enabled,
            pin_length=self.room_telephony_pin_length,
            pin_max_retries=self.room_telephony_pin_max_retries,
            dispatch_mode=self.room_telephony_dispatch_mode,
            schedule_lead=self.room_telephony_schedule_lead,
            liveness_interval=self.room_telephony_liveness_interval,
            max_session_duration=self.room_telephony_max_session_duration,
            hide_phone_number=self.room_telephony_hide_phone_number,
        )


def reveal(secret: SecretStr | None) -> str:
    """A secret setting's value, "" when unset: the one place secrets are unwrapped."""
    return secret.get_secret_value() if secret is not None else ""


def http_url(url: str) -> str:
    """ws(s):// becomes http(s)://; anything else is returned as it is."""
    for websocket, http in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(websocket):
            return http + url[len(websocket) :]
    return url


# What a secret, or the credentials in a URL, are shown as.
SECRET_MASK = "********"  # noqa: S105 - what is shown instead of a secret


def redacted_url(url: str) -> str:
    """`url` with any `user:password@` replaced by the mask, for output and logs."""
    # RFC 3986: the authority ends at the first `/`, `?` or `#`; its userinfo, at its last `@`.
    match = re.match(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)", url)
    if match is None or "@" not in match["authority"]:
        return url
    host = match["authority"].rpartition("@")[2]
    return f"{match['scheme']}{SECRET_MASK}@{host}{url[match.end() :]}"


class _FieldError(ValueError):
    """Raised inside model validators to name the variable a cross-field check is about."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field.upper()}: {reason}")
        self.field = field
        self.reason = reason


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and overrides, by attribute name); `SettingsError` on bad input."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line: the first offending variable, upper-cased as in the environment, and the reason.

    The rejected value is echoed only for fields that cannot hold a secret.
    """
    error = exc.errors()[0]
    location = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
    context = error.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, _FieldError):
        return _one_line(f"{cause.field.upper()}: {cause.reason}")
    variable = _variable_name(location[0]) if location else "SETTINGS"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return _one_line(f"{variable}: {message}")


def _variable_name(name: str) -> str:
    """The environment variable the operator set: for an aliased field, the alias actually present.

    Without this, a bad `LIVEKIT_API_URL` would be reported as `LIVEKIT_URL`, a variable that is
    not in the operator's environment at all.
    """
    field = Settings.model_fields.get(name.lower())
    if field is None:
        field = next(
            (
                f
                for f in Settings.model_fields.values()
                if isinstance(f.validation_alias, AliasChoices)
                and name.lower() in {str(c).lower() for c in f.validation_alias.choices}
            ),
            None,
        )
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        present = {key.upper() for key in os.environ}
        for choice in field.validation_alias.choices:
            if str(choice).upper() in present:
                return str(choice).upper()
    return name.upper()


def _one_line(text: str) -> str:
    return " ".join(text.split())
