"""Scale Step Functions Wait states and Retry intervals, without editing the ASL.

The gap in moto (5.2.5): its Step Functions engine really sleeps. A ``Wait`` of 60 s takes
60 s and a ``Retry`` with ``IntervalSeconds`` 30 takes 30 s (more with ``BackoffRate``), so
a test of the real definitions would take minutes.

:func:`install` (idempotent) patches two points of the engine
(``moto/stepfunctions/parser/asl``):

- ``component/state/wait/wait_function/wait_function.py: WaitFunction._wait_interval``
  (every Wait form: ``Seconds``, ``SecondsPath``, ``Timestamp``, ``TimestampPath``): waits
  ``seconds * scale``, still on the execution's ``program_state_event`` so that stopping
  the execution interrupts the wait. (The original re-waits when fewer whole seconds than
  asked have passed, which would undo any scaling.)
- ``component/common/retry/retrier_decl.py``: the module's ``time.sleep`` between retry
  attempts becomes ``sleep(interval * scale)`` (the module's ``time`` name is swapped for a
  proxy; the global ``time`` module is untouched). ``BackoffRate``, ``MaxDelaySeconds`` and
  ``JitterStrategy`` are computed by moto as usual, before scaling.

The factor: :func:`set_time_scale` (wins), else the environment variable
``AUTOLOOP_SFN_TIME_SCALE`` read at each wait, else 1.0. At 1.0 the original code runs.

Decision on timeouts: ``TimeoutSeconds``/``TimeoutSecondsPath`` and ``HeartbeatSeconds`` of
tasks, and the execution's ``TimeoutSeconds``, stay unscaled. Waits and retry intervals are
pure delays, so shrinking them changes no outcome; timeouts guard real work (a Lambda
handler, a local SageMaker job running a real script), which does not get faster with the
factor. Scaling them would turn a healthy 5-second job under a 300-second timeout into a
``States.Timeout`` at 0.01. With the factor applied only to delays, every execution takes
the same path as at 1.0.
"""

from __future__ import annotations

import os
import time
from typing import Any

from localaws.patching import Patches

ENV_VAR = "AUTOLOOP_SFN_TIME_SCALE"

PATCHES = Patches("sfn_time")
_scale: float | None = None


def set_time_scale(scale: float | None) -> None:
    """Set the factor (``None`` goes back to ``$AUTOLOOP_SFN_TIME_SCALE`` or 1.0)."""
    global _scale
    if scale is not None and scale < 0:
        raise ValueError(f"time scale must be >= 0, got {scale}")
    _scale = None if scale is None else float(scale)


def time_scale() -> float:
    """The factor in effect now."""
    if _scale is not None:
        return _scale
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{ENV_VAR} must be >= 0, got {raw!r}")
    return value


class _ScaledTime:
    """Stands in for the ``time`` module inside retrier_decl: scaled ``sleep``."""

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, float(seconds) * time_scale()))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    scale = time_scale()
    if scale == 1.0:
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        original = PATCHES.original(WaitFunction, "_wait_interval")
        return original(self, env=env, wait_seconds=wait_seconds)  # type: ignore[no-any-return]
    deadline = time.monotonic() + max(0.0, float(wait_seconds)) * scale
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        # the event is set (and cleared) when the execution's state changes, e.g. on stop
        env.program_state_event.wait(remaining)
    return None


def install() -> None:
    """Patch the engine. Idempotent."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    patches.set(WaitFunction, "_wait_interval", _wait_interval)
    patches.set(retrier_decl, "time", _ScaledTime())


uninstall = PATCHES.restore
installed = PATCHES.active
