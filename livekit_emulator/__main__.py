"""`python -m livekit_emulator`: run the emulator standalone until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .emulator import LiveKitEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m livekit_emulator", description="LiveKit server + SIP emulator (dev only)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880, help="0 picks a free port")
    parser.add_argument("--api-key", default="devkey")
    parser.add_argument("--api-secret", default="secret")
    parser.add_argument(
        "--extra-key",
        action="append",
        default=[],
        metavar="KEY:SECRET",
        help="another accepted key/secret pair (repeatable)",
    )
    parser.add_argument(
        "--webhook-url", action="append", default=[], help="webhook receiver (repeatable)"
    )
    parser.add_argument(
        "--empty-timeout", type=float, default=300.0, help="seconds an empty room stays open"
    )
    parser.add_argument(
        "--trunk",
        action="append",
        default=[],
        metavar="NUMBER",
        help="pre-create an inbound trunk owning NUMBER (repeatable)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API call (fault)"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    extra = dict(pair.split(":", 1) for pair in args.extra_key)
    emu = LiveKitEmulator(
        api_key=args.api_key,
        api_secret=args.api_secret,
        webhook_urls=args.webhook_url,
        empty_timeout=args.empty_timeout,
        extra_keys=extra,
        latency=args.latency,
    )
    await emu.start(host=args.host, port=args.port)
    for number in args.trunk:
        trunk_id = await emu.create_inbound_trunk(numbers=[number], name=f"trunk {number}")
        logging.getLogger("livekit_emulator").info("inbound trunk %s owns %s", trunk_id, number)
    # The line scripts wait for; flushed so a parent process reading stdout sees it at once.
    print(f"LiveKit emulator ready on {emu.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
