"""`meet-telephony`: the service's command line.

Process entry points are imported lazily, so `telephony` (shared by every process) does not
depend on the worker's or the gateway's modules.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from telephony.logs import configure_logging
from telephony.settings import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_SETTINGS = 2


def _run_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker.app import run_worker

    asyncio.run(run_worker(settings))
    return EXIT_OK


def _run_gateway(settings: Settings, args: argparse.Namespace) -> int:
    from webhook_gateway.app import GatewayConfigError
    from webhook_gateway.server import run_gateway

    try:
        asyncio.run(run_gateway(settings, insecure_no_api_token=args.insecure_no_api_token))
    except GatewayConfigError as exc:
        print(f"meet-telephony gateway: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meet-telephony",
        description="Phone dial-in for LiveKit rooms, run on Temporal.",
        epilog="Settings come from the environment; see the README's settings table.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    worker = commands.add_parser(
        "worker",
        help="run the Temporal worker (room workflows, PIN leases, LiveKit activities)",
        description="Run the worker until SIGTERM/SIGINT; in-flight activities finish first.",
    )
    worker.set_defaults(handler=_run_worker)
    gateway = commands.add_parser(
        "gateway",
        help="run the HTTP gateway (LiveKit webhooks, backend API, health, metrics)",
        description=(
            "Serve on TELEPHONY_GATEWAY_HOST:TELEPHONY_GATEWAY_PORT until SIGTERM/SIGINT; "
            "in-flight requests finish first. Needs TELEPHONY_API_TOKEN."
        ),
    )
    gateway.add_argument(
        "--insecure-no-api-token",
        action="store_true",
        help="development only: run without TELEPHONY_API_TOKEN, with the API token check off",
    )
    gateway.set_defaults(handler=_run_gateway)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"meet-telephony: invalid setting: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    configure_logging(settings)
    handler = args.handler
    result: int = handler(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
