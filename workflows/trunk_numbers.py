"""`TrunkNumbersWorkflow`: the numbers of LiveKit's inbound trunks, for dial-in discovery.

A short run with a fixed id (`telephony-trunk-numbers`) that clients start with id-conflict
policy USE_EXISTING, so concurrent readers share one LiveKit call.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from telephony import contracts


@workflow.defn(name=contracts.TRUNK_NUMBERS_WORKFLOW)
class TrunkNumbersWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        numbers: list[str] = await workflow.execute_activity(
            contracts.LIST_TRUNK_NUMBERS,
            result_type=list[str],
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return numbers
