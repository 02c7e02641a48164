"""Connecting to Temporal the way its own tools do (TEMPORAL_* variables, config profiles)."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from telephony.codec import EncryptionCodec
from telephony.settings import Settings, reveal


def connect_options(settings: Settings) -> dict[str, Any]:
    """`Client.connect` keyword arguments: Temporal's env conventions, then our settings on top.

    TLS material comes through Temporal's own loader (TEMPORAL_TLS_*), which reads the files.
    """
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options["target_host"] = settings.temporal_address
    options["namespace"] = settings.temporal_namespace
    if settings.temporal_api_key is not None:
        options["api_key"] = reveal(settings.temporal_api_key)
        options.setdefault("tls", True)
    if settings.temporal_tls is not None and not settings.temporal_tls:
        options["tls"] = False
    return options


def data_converter(settings: Settings) -> DataConverter:
    """The one data converter of every process: pydantic models as JSON, then, with
    TELEPHONY_PAYLOAD_KEYS, encrypted (telephony/codec.py)."""
    keys = settings.payload_keys
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))


async def connect_temporal(
    settings: Settings, runtime: Runtime | None = None, *, lazy: bool = False
) -> Client:
    """A client for the configured Temporal. `lazy`: connect on first use (and reconnect after
    an outage), so a process can start while Temporal is down."""
    options = connect_options(settings)
    if runtime is not None:
        options["runtime"] = runtime
    return await Client.connect(data_converter=data_converter(settings), lazy=lazy, **options)


def temporal_connection_problem(exc: BaseException) -> str:
    """Why Temporal could not be reached, in a few words (the SDK's text quotes its transport
    internals: `tonic::transport::Error(...)`)."""
    text = str(exc)
    lowered = text.lower()
    for marker, reason in (
        ("refused", "connection refused"),
        ("dns error", "host name not found"),
        ("timed out", "timed out"),
        ("certificate", "TLS certificate problem"),
        ("unauthenticated", "credentials refused"),
    ):
        if marker in lowered:
            return reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    return text.splitlines()[0][:120] if text else type(exc).__name__
