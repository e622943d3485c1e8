"""The kernel imports inside Temporal's workflow sandbox: no I/O or restricted calls at import time."""

import pytest

sandbox = pytest.importorskip("temporalio.worker.workflow_sandbox")


async def test_kernel_imports_in_the_workflow_sandbox() -> None:
    from temporalio.workflow import _Definition

    from tests.kernel.sandbox_workflow import KernelImportWorkflow

    # prepare_workflow imports the workflow's module in a fresh sandbox, with the default
    # restrictions, and raises if anything it imports does something a workflow may not.
    sandbox.SandboxedWorkflowRunner().prepare_workflow(_Definition.must_from_class(KernelImportWorkflow))
