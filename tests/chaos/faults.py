"""Faults: the emulator's (webhooks, LiveKit API) through its `/_emulator/faults/*` routes, and
the processes' (a worker or a gateway SIGKILLed and restarted, Temporal restarted on its file).

Process faults and timed ones (latency) run in the background, so that the scenario goes on
meanwhile, as the backend and LiveKit would; `Faults.settle()` waits for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import aiohttp

from tests.chaos.generator import FAULT_KINDS, Step
from tests.chaos.processes import ChaosStack


class Faults:
    def __init__(self, stack: ChaosStack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session
        self.counts: Counter[str] = Counter()
        self._background: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []
        # One process fault at a time per process: a second kill waits for the first restart.
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def _emulator(self, action: str, **args: Any) -> None:
        url = f"{self.stack.livekit_url}/_emulator/faults/{action}"
        async with self.session.post(url, json=args) as response:
            if response.status != 200:
                raise RuntimeError(
                    f"fault {action}: HTTP {response.status} {await response.text()}"
                )

    def _spawn(self, name: str, work: Any) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as exc:  # reported at quiescence: a process that did not come back
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}")

        task = asyncio.get_running_loop().create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def apply(self, step: Step) -> None:
        assert step.kind in FAULT_KINDS, step.kind
        self.counts[step.kind] += 1
        a = step.args
        if step.kind == "webhook_drop":
            await self._emulator("drop_webhooks", count=a["count"])
        elif step.kind == "webhook_dup":
            await self._emulator("duplicate_webhooks", count=a["count"])
        elif step.kind == "webhook_delay":
            await self._emulator("delay_webhooks", seconds=a["seconds"], count=a["count"])
        elif step.kind == "webhook_reorder":
            await self._emulator("reorder_webhooks", count=a["count"])
        elif step.kind == "livekit_503":
            await self._emulator("fail_next", method=a["method"], code="unavailable",
                                 count=a["count"])  # fmt: skip
        elif step.kind == "livekit_lost_response":
            await self._emulator("apply_then_fail", method=a["method"], count=a["count"])
        elif step.kind == "livekit_latency":
            await self._emulator("set_latency", seconds=a["seconds"])
            self._spawn(step.kind, self._latency_off(a["duration"]))
        elif step.kind == "worker_kill":
            self._spawn(step.kind, self._kill_restart(self.stack.workers[a["worker"]], a["down"]))
        elif step.kind == "gateway_kill":
            index = a["gateway"]
            self._spawn(step.kind, self._kill_gateway(index, a["down"]))
        elif step.kind == "temporal_restart":
            self._spawn(step.kind, self._restart_temporal(a["down"]))

    async def _latency_off(self, after: float) -> None:
        await asyncio.sleep(after)
        await self._emulator("set_latency", seconds=0)

    async def _kill_restart(self, child: Any, down: float) -> None:
        async with self._lock(child.name):
            child.kill()
            await asyncio.sleep(down)
            child.start()

    async def _kill_gateway(self, index: int, down: float) -> None:
        gateway = self.stack.gateways[index]
        async with self._lock(gateway.name):
            gateway.kill()
            await asyncio.sleep(down)
            gateway.start()
            await self.stack.gateway_up(index)

    async def _restart_temporal(self, down: float) -> None:
        temporal = self.stack.temporal
        assert temporal is not None
        async with self._lock(temporal.name):
            temporal.stop()
            await asyncio.sleep(down)
            temporal.start()
            await self.stack.wait_temporal()

    async def clear(self) -> None:
        """Every pending emulator fault removed (held or delayed webhooks still go out)."""
        async with self.session.delete(f"{self.stack.livekit_url}/_emulator/faults") as response:
            response.raise_for_status()

    async def settle(self) -> None:
        """Wait for the background faults: every process is back."""
        while self._background:
            await asyncio.gather(*list(self._background))
        with contextlib.suppress(Exception):
            await self.clear()
