"""SendTaskFailure keeps its ``cause``.

Gap in moto 5.2.5: ``StepFunctionResponse.send_task_failure`` (moto/stepfunctions/responses.py)
reads ``taskToken`` and ``error`` but drops ``cause``, so a task failed through the callback
API reaches the state machine's Catch with a null Cause. Autoloop's callback handler puts
the SageMaker job's FailureReason in the cause, and the failure notification quotes it,
so the local AWS must keep it as AWS does.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import EmptyResult
from moto.stepfunctions.responses import StepFunctionResponse

from localaws.patching import Patches

PATCHES = Patches("sfn_callbacks")


def _send_task_failure(self: Any) -> Any:
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


def install() -> None:
    """Patch ``StepFunctionResponse.send_task_failure``. Idempotent."""
    PATCHES.apply(lambda patches: patches.set(StepFunctionResponse, "send_task_failure", _send_task_failure))


uninstall = PATCHES.restore
installed = PATCHES.active
