"""The gateway process: connect to Temporal (lazily), serve, stop gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from typing import NoReturn

from aiohttp import web
from temporalio.client import Client

from telephony.client import TelephonyClient
from telephony.process import EXIT_OK, EXIT_USAGE, exit_process, start_process, stop_on_signals
from telephony.settings import Settings
from telephony.temporal import connect_temporal
from webhook_gateway.app import GatewayConfigError, create_app
from webhook_gateway.protocol import GatewayRunner

log = logging.getLogger(__name__)

# In-flight requests get this long to finish once a stop is asked for.
SHUTDOWN_TIMEOUT_SECONDS = 10.0


async def lazy_temporal_client(settings: Settings) -> Client:
    """A client that connects on first use and reconnects by itself after an outage.

    Lazy, so the gateway starts (and `/readyz` says 503) while Temporal is still down, instead of
    failing to start; calls made while Temporal is down fail and are answered 503.
    """
    return await connect_temporal(settings, lazy=True)


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve `app` on host:port (0 = a free port) until the block ends; yields the base URL.

    On exit the listener closes first, then in-flight requests get SHUTDOWN_TIMEOUT_SECONDS.
    """
    runner = GatewayRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()


async def run_gateway(
    settings: Settings,
    *,
    insecure_no_api_token: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve on TELEPHONY_GATEWAY_HOST:TELEPHONY_GATEWAY_PORT until `stop` (or a signal)."""
    stop = stop or stop_on_signals()
    client = TelephonyClient(await lazy_temporal_client(settings), settings)
    app = create_app(settings, client, insecure_no_api_token=insecure_no_api_token)
    host, port = settings.telephony_gateway_host, settings.telephony_gateway_port
    async with serving(app, host, port) as url:
        log.info(
            "gateway listening on %s (Temporal %s, namespace %s)",
            url,
            settings.temporal_address,
            settings.temporal_namespace,
        )
        await stop.wait()
        log.info("stopping: finishing in-flight requests")
    log.info("gateway stopped")


def add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-no-api-token",
        action="store_true",
        help="development only: run without TELEPHONY_API_TOKEN, with the API token check off",
    )


def serve_until_stopped(settings: Settings, prog: str, *, insecure_no_api_token: bool) -> int:
    """Run the gateway process; a configuration it refuses is one line and exit code 2."""
    try:
        asyncio.run(run_gateway(settings, insecure_no_api_token=insecure_no_api_token))
    except GatewayConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """`python -m webhook_gateway`: settings from the environment, serve until SIGTERM/SIGINT."""
    prog = "python -m webhook_gateway"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The meet-telephony HTTP gateway (the same as `meet-telephony gateway`): "
        "LiveKit webhooks, the backend API, health and metrics, on "
        "TELEPHONY_GATEWAY_HOST:TELEPHONY_GATEWAY_PORT; in-flight requests finish on SIGTERM.",
    )
    add_gateway_arguments(parser)
    args = parser.parse_args(argv)
    settings = start_process(prog)
    exit_process(
        serve_until_stopped(settings, prog, insecure_no_api_token=args.insecure_no_api_token)
    )
