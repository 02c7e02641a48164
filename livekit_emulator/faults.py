"""Fault injection: API latency and errors, lost responses, misbehaving webhook delivery."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from .twirp import STATUS_BY_CODE


@dataclass
class _ErrorPlan:
    code: str
    remaining: int
    apply_first: bool


@dataclass(frozen=True)
class CallFault:
    """What to do with one API call: its error code, and whether to apply it first."""

    code: str
    apply_first: bool


class Faults:
    """Pending faults, consumed in order: `fail_next(m, count=2)` fails m's next two calls."""

    def __init__(self) -> None:
        self._errors: dict[str, deque[_ErrorPlan]] = {}
        self._latency: dict[str | None, float] = {}
        self.webhook_drop = 0
        self.webhook_duplicate = 0
        self.webhook_delay: deque[float] = deque()
        self.webhook_reorder = 0

    # --- API calls ---------------------------------------------------------------------------
    def fail_next(self, method: str, code: str = "unavailable", count: int = 1) -> None:
        """The next `count` calls of Twirp `method` fail with `code`, changing nothing."""
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown Twirp error code {code!r}")
        self._errors.setdefault(method, deque()).append(_ErrorPlan(code, count, False))

    def apply_then_fail(self, method: str, count: int = 1) -> None:
        """The next `count` calls of `method` take effect but answer 503: a lost response."""
        self._errors.setdefault(method, deque()).append(_ErrorPlan("unavailable", count, True))

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every call (or every call of `method`) by `seconds`; 0 removes the delay."""
        if seconds <= 0:
            self._latency.pop(method, None)
        else:
            self._latency[method] = seconds

    def latency_for(self, method: str) -> float:
        return self._latency.get(method, self._latency.get(None, 0.0))

    def take_call_fault(self, method: str) -> CallFault | None:
        plans = self._errors.get(method)
        if not plans:
            return None
        plan = plans[0]
        plan.remaining -= 1
        if plan.remaining <= 0:
            plans.popleft()
        return CallFault(plan.code, plan.apply_first)

    # --- webhooks ------------------------------------------------------------------------------
    def drop_webhooks(self, count: int = 1) -> None:
        """The next `count` events are never delivered (to any URL)."""
        self.webhook_drop += count

    def duplicate_webhooks(self, count: int = 1) -> None:
        """The next `count` events are delivered twice, same id."""
        self.webhook_duplicate += count

    def delay_webhooks(self, seconds: float, count: int = 1) -> None:
        """The next `count` events are sent `seconds` late, letting later events overtake them."""
        self.webhook_delay.extend([seconds] * count)

    def reorder_webhooks(self, count: int = 2) -> None:
        """The next `count` events are held and then sent in reverse order."""
        self.webhook_reorder += count

    def clear(self) -> None:
        self._errors.clear()
        self._latency.clear()
        self.webhook_drop = 0
        self.webhook_duplicate = 0
        self.webhook_delay.clear()
        self.webhook_reorder = 0

    def snapshot(self) -> dict[str, Any]:
        """The pending faults, for the debug route."""
        return {
            "errors": {
                m: [
                    {"code": p.code, "remaining": p.remaining, "apply_first": p.apply_first}
                    for p in plans
                ]
                for m, plans in self._errors.items()
                if plans
            },
            "latency": {m or "*": s for m, s in self._latency.items()},
            "webhooks": {
                "drop": self.webhook_drop,
                "duplicate": self.webhook_duplicate,
                "delay": list(self.webhook_delay),
                "reorder": self.webhook_reorder,
            },
        }
