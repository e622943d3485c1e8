"""A workflow that imports the whole kernel inside Temporal's sandbox (see test_sandbox.py)."""

from temporalio import workflow

import kernel.calendar.ics
import kernel.calendar.windows
import kernel.lexicon
import kernel.matching


@workflow.defn(sandboxed=True)
class KernelImportWorkflow:
    @workflow.run
    async def run(self) -> str:
        modules = (kernel.calendar.ics, kernel.calendar.windows, kernel.lexicon, kernel.matching)
        return ",".join(m.__name__ for m in modules)
