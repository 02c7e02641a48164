"""What every process of the service does the same way: read the settings (a bad one is one line
and exit code 2), set up logging, stop on SIGTERM/SIGINT, and end without interpreter
finalization. Used by `python -m worker`, `python -m webhook_gateway` and `meet-telephony`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Final, NoReturn

from telephony.logs import configure_logging
from telephony.settings import Settings, SettingsError, load_settings

ENV_FILE_VARIABLE: Final = "TELEPHONY_ENV_FILE"
EXIT_OK: Final = 0
EXIT_USAGE: Final = 2  # bad settings, bad arguments


class StartupError(Exception):
    """The process cannot start: `str()` is the one line to print."""


def settings_from_environment(env_file: str | None = None) -> Settings:
    """The environment, over `env_file` (or TELEPHONY_ENV_FILE) if given; `StartupError` on a
    missing file or a bad setting."""
    env_file = env_file if env_file is not None else os.environ.get(ENV_FILE_VARIABLE)
    overrides: dict[str, Any] = {}
    if env_file:
        if not Path(env_file).is_file():
            raise StartupError(f"--env-file {env_file}: no such file")
        overrides["_env_file"] = env_file
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise StartupError(f"invalid setting: {exc}") from None


def start_process(prog: str, env_file: str | None = None) -> Settings:
    """Settings and logging for a process; on a bad setting print one line and exit 2."""
    try:
        settings = settings_from_environment(env_file)
    except StartupError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        exit_process(EXIT_USAGE)
    configure_logging(settings)
    return settings


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; call from inside the running event loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def exit_process(code: int) -> NoReturn:
    """End the process now, once output is flushed.

    Skips interpreter finalization: Temporal's client keeps native threads that can abort a
    finalizing interpreter ("PyGILState_Release", temporalio/sdk-python#300), which would turn a
    successful run into a crash with exit code -6.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
