"""Connecting to Temporal the way its own tools do (TEMPORAL_* variables, config profiles)."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

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


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    options = connect_options(settings)
    if runtime is not None:
        options["runtime"] = runtime
    return await Client.connect(data_converter=pydantic_data_converter, **options)
