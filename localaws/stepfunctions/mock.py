"""Step Functions Local's mocked service integrations (``SFN_MOCK_CONFIG``) for moto.

The gap in moto (5.2.5): its Step Functions engine carries the whole mocking machinery of
AWS Step Functions Local. ``moto/stepfunctions/parser/mocking/mock_config.py`` builds
``MockTestCase`` objects, ``asl/eval/environment.py: Environment.is_mocked_mode`` /
``get_current_mocked_response`` pick the response for the current state and attempt
(``$$.State.RetryCount``), and the Lambda and service-integration tasks
(``state_task/lambda_eval_utils.py``, ``service/state_task_service.py``) return the mocked
``Return`` or raise the mocked ``Throw`` instead of calling the service. None of it is
reachable: ``mock_config.load_mock_test_case_for`` hard-codes the raw configuration to
``None`` (the pydantic models of the file live in LocalStack, not in moto), the only code
that parses ``<state machine arn>#<TestCase>`` is ``parser/provider.py`` (LocalStack's
provider, vendored but never imported: it imports ``localstack``), and moto's own backend
(``parser/models.py: StepFunctionsParserBackend.start_execution``) neither strips the
``#TestCase`` suffix (so StartExecution fails with ``StateMachineDoesNotExist``) nor passes
a test case to ``backend/execution.py: Execution._get_start_execution_worker``. Tests of the
real state machine definitions therefore had to deploy every Lambda and service they touch,
and could not force a failure on a given attempt to exercise ``Retry`` and ``Catch``.

This module wires it up the way Step Functions Local does:

- The configuration is the ``MockConfigFile.json`` format of "Testing with mocked service
  integrations"::

      {"StateMachines": {"<state machine name>": {"TestCases": {
           "<test case>": {"<state name>": "<mocked response name>"}}}},
       "MockedResponses": {"<mocked response name>": {
           "0": {"Return": {...}},
           "1-2": {"Throw": {"Error": "...", "Cause": "..."}}}}}

  Keys of a mocked response are attempt numbers (0 = first attempt, 1 = first retry) or
  inclusive ranges ``"a-b"``; they must start at 0 and be consecutive. Each entry has
  exactly one of ``Return`` (a JSON object: the service's API response, e.g.
  ``{"StatusCode": 200, "Payload": {...}}`` for Lambda, of which a Lambda task keeps
  ``Payload`` as usual) or ``Throw`` (``Error`` required, ``Cause`` optional).
- :func:`load` (a path, or the parsed dict) validates the whole file eagerly, building
  moto's own ``MockTestCase`` objects, and makes it the active configuration.
  :func:`set_config_from_env` loads ``$SFN_MOCK_CONFIG`` (the variable Step Functions Local
  reads). If nothing was loaded, a test case lookup reads ``$SFN_MOCK_CONFIG`` itself.
- :func:`install` (idempotent) patches moto so that ``StartExecution`` with
  ``stateMachineArn = "<state machine arn>#<TestCase>"`` runs the execution of
  ``<state machine arn>`` with that test case: states listed in the test case get the mocked
  response for their attempt number (so ``Retry`` and ``Catch`` behave as with the real
  service), the other states run for real. An unknown test case is rejected with
  ``InvalidName``. The patches live in moto's classes, so they apply to ``moto.mock_aws``
  and to a moto server running in this process (``localaws.server.start``) alike; for a
  separate ``moto_server`` process, call :func:`install` in that process.
  :func:`start_execution_with_test_case` is the same call from Python.

Patched (moto 5.2.5, ``moto/stepfunctions``):

- ``parser/models.py: StepFunctionsParserBackend.start_execution`` and
  ``models.py: StepFunctionBackend.start_execution`` (no execution engine): strip and
  resolve the ``#TestCase`` suffix, then call the original with the plain ARN.
- ``parser/backend/execution.py: Execution._get_start_execution_worker``: the worker gets
  the resolved test case (handed over through a thread-local, as the execution is created
  and started inside the original ``start_execution``).
- ``parser/mocking/mock_config.py: load_mock_test_case_for``: answers from the active
  configuration (moto itself does not call it; patched for consistency).

Limitations: only what moto's engine mocks is mocked, i.e. Lambda tasks (both
``arn:aws:lambda:...:function:...`` and ``arn:aws:states:::lambda:invoke``) and optimised /
AWS SDK service integrations in request-response mode; Activity tasks, ``.sync`` and
``.waitForTaskToken`` integrations are not mocked. An attempt beyond the last defined
response fails that attempt (moto's ``RuntimeError`` "No mocked response definition for
state ... and retry number N" becomes a task failure with error ``Exception``); it does not
repeat the last response.
``StartSyncExecution`` is not offered by moto. The execution's ``stateMachineArn`` (in
DescribeExecution) is the plain ARN.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localaws.patching import Patches

ENV_VAR = "SFN_MOCK_CONFIG"
TEST_CASE_SEPARATOR = "#"

PATCHES = Patches("sfn_mock")
_pending = threading.local()  # test case handed from start_execution to the worker

_config: MockConfig | None = None
_env_cache: tuple[str, float, MockConfig] | None = None  # (path, mtime, config)


class MockConfigError(ValueError):
    """The mock configuration is malformed."""


@dataclass(frozen=True)
class MockConfig:
    """A validated mock configuration. ``test_cases[state machine][test case]`` is moto's
    ``MockTestCase``; ``raw`` is the configuration as given."""

    raw: dict[str, Any]
    test_cases: dict[str, dict[str, Any]] = field(repr=False)
    source: str | None = None

    def test_case(self, state_machine_name: str, test_case_name: str) -> Any | None:
        return self.test_cases.get(state_machine_name, {}).get(test_case_name)


# --------------------------------------------------------------------------- parsing


def _mocked_response(response_name: str, range_key: Any, entry: Any) -> Any:
    from moto.stepfunctions.parser.mocking.mock_config import (
        MockedResponseReturn,
        MockedResponseThrow,
        _parse_mocked_response_range,
    )

    where = f"MockedResponses.{response_name}.{range_key}"
    if not isinstance(range_key, str):
        raise MockConfigError(f"{where}: the key must be a string like '0' or '1-2'")
    try:
        start, end = _parse_mocked_response_range(range_key)
    except RuntimeError as exc:
        raise MockConfigError(f"{where}: {exc}") from None
    if not isinstance(entry, Mapping):
        raise MockConfigError(f"{where}: must be an object with 'Return' or 'Throw'")
    keys = set(entry)
    if keys not in ({"Return"}, {"Throw"}):
        raise MockConfigError(f"{where}: must have exactly one of 'Return' or 'Throw' (got {sorted(keys)})")
    try:
        if "Return" in entry:
            payload = entry["Return"]
            if not isinstance(payload, Mapping):
                raise MockConfigError(f"{where}.Return: must be a JSON object (the API response)")
            return MockedResponseReturn(range_start=start, range_end=end, payload=json.loads(json.dumps(payload)))
        throw = entry["Throw"]
        if not isinstance(throw, Mapping) or not isinstance(throw.get("Error"), str) or not throw["Error"]:
            raise MockConfigError(f"{where}.Throw: needs a non-empty string 'Error'")
        cause = throw.get("Cause", "")
        if not isinstance(cause, str):
            raise MockConfigError(f"{where}.Throw.Cause: must be a string")
        unknown = set(throw) - {"Error", "Cause"}
        if unknown:
            raise MockConfigError(f"{where}.Throw: unknown field(s) {sorted(unknown)}")
        return MockedResponseThrow(range_start=start, range_end=end, error=throw["Error"], cause=cause)
    except ValueError as exc:  # moto's MockedResponse range checks
        if isinstance(exc, MockConfigError):
            raise
        raise MockConfigError(f"{where}: {exc}") from None


def _parse(raw: Any, source: str | None) -> MockConfig:
    from moto.stepfunctions.parser.mocking.mock_config import MockTestCase, StateMockedResponses

    if not isinstance(raw, Mapping):
        raise MockConfigError("the mock configuration must be a JSON object")
    unknown = set(raw) - {"StateMachines", "MockedResponses"}
    if unknown:
        raise MockConfigError(f"unknown top-level field(s) {sorted(unknown)}")
    machines = raw.get("StateMachines", {})
    responses = raw.get("MockedResponses", {})
    if not isinstance(machines, Mapping) or not isinstance(responses, Mapping):
        raise MockConfigError("'StateMachines' and 'MockedResponses' must be objects")

    parsed_responses: dict[str, list[Any]] = {}
    for response_name, ranges in responses.items():
        if not isinstance(ranges, Mapping) or not ranges:
            raise MockConfigError(f"MockedResponses.{response_name}: must be a non-empty object")
        parsed_responses[response_name] = [_mocked_response(response_name, key, entry) for key, entry in ranges.items()]

    test_cases: dict[str, dict[str, Any]] = {}
    for machine_name, machine in machines.items():
        if not isinstance(machine, Mapping) or not isinstance(machine.get("TestCases"), Mapping):
            raise MockConfigError(f"StateMachines.{machine_name}: needs a 'TestCases' object")
        test_cases[machine_name] = {}
        for case_name, states in machine["TestCases"].items():
            where = f"StateMachines.{machine_name}.TestCases.{case_name}"
            if not isinstance(states, Mapping):
                raise MockConfigError(f"{where}: must map state names to mocked response names")
            per_state = []
            for state_name, response_name in states.items():
                if not isinstance(response_name, str) or response_name not in parsed_responses:
                    raise MockConfigError(
                        f"{where}.{state_name}: no mocked response {response_name!r} in MockedResponses"
                    )
                try:
                    per_state.append(
                        StateMockedResponses(
                            state_name=state_name,
                            mocked_response_name=response_name,
                            mocked_responses=parsed_responses[response_name],
                        )
                    )
                except RuntimeError as exc:  # non-consecutive attempt numbers
                    raise MockConfigError(f"{where}.{state_name}: {exc}") from None
            test_cases[machine_name][case_name] = MockTestCase(
                state_machine_name=machine_name,
                test_case_name=case_name,
                state_mocked_responses_list=per_state,
            )
    return MockConfig(raw=json.loads(json.dumps(raw)), test_cases=test_cases, source=source)


def _read(path: str | os.PathLike[str]) -> MockConfig:
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MockConfigError(f"{path}: not valid JSON: {exc}") from None
    return _parse(raw, source=str(path))


def parse(path_or_dict: str | os.PathLike[str] | Mapping[str, Any] | MockConfig) -> MockConfig:
    """Validate a configuration without activating it."""
    if isinstance(path_or_dict, MockConfig):
        return path_or_dict
    if isinstance(path_or_dict, Mapping):
        return _parse(path_or_dict, source=None)
    return _read(path_or_dict)


# --------------------------------------------------------------------------- config


def load(path_or_dict: str | os.PathLike[str] | Mapping[str, Any] | MockConfig) -> MockConfig:
    """Validate the configuration (a ``MockConfigFile.json`` path or its parsed dict) and
    make it the active one (replacing any earlier). Does not patch moto: see :func:`install`."""
    global _config
    config = parse(path_or_dict)
    _config = config
    return config


def set_config_from_env() -> MockConfig | None:
    """Load the file named by ``$SFN_MOCK_CONFIG``; ``None`` (and nothing changes) if unset."""
    path = os.environ.get(ENV_VAR, "").strip()
    if not path:
        return None
    return load(path)


def clear() -> None:
    """Forget the active configuration (lookups fall back to ``$SFN_MOCK_CONFIG``)."""
    global _config, _env_cache
    _config = None
    _env_cache = None


def active_config() -> MockConfig | None:
    """The configuration lookups use: the loaded one, else ``$SFN_MOCK_CONFIG`` (re-read
    when the file changes), else ``None``."""
    global _env_cache
    if _config is not None:
        return _config
    path = os.environ.get(ENV_VAR, "").strip()
    if not path:
        return None
    mtime = os.stat(path).st_mtime
    cached = _env_cache
    if cached is not None and cached[0] == path and cached[1] == mtime:
        return cached[2]
    config = _read(path)
    _env_cache = (path, mtime, config)
    return config


def load_mock_test_case_for(state_machine_name: str, test_case_name: str) -> Any | None:
    """moto's ``MockTestCase`` for the pair, or ``None`` (same contract as moto's function)."""
    config = active_config()
    return None if config is None else config.test_case(state_machine_name, test_case_name)


# --------------------------------------------------------------------------- patches


def split_test_case(state_machine_arn: str) -> tuple[str, str | None]:
    """``"arn#Case"`` -> ``("arn", "Case")``; ``"arn"`` -> ``("arn", None)``."""
    base, sep, case = state_machine_arn.partition(TEST_CASE_SEPARATOR)
    return (base, case) if sep else (state_machine_arn, None)


def _resolve(backend: Any, base_arn: str, case: str) -> Any:
    from moto.stepfunctions.exceptions import InvalidName

    # an unknown or malformed ARN: raises moto's usual error for the plain ARN
    name = backend.describe_state_machine(base_arn).name
    try:
        test_case = load_mock_test_case_for(name, case)
    except (OSError, MockConfigError) as exc:
        raise InvalidName(f"Invalid mock test case name '{case}' for state machine '{name}': {exc}") from None
    if test_case is None:
        raise InvalidName(
            f"Invalid mock test case name '{case}' for state machine '{name}'. "
            "Either the test case is not defined or no mock configuration is loaded "
            f"(localaws.stepfunctions.mock.load or ${ENV_VAR})."
        )
    return test_case


def _wrap_start_execution(original: Any) -> Any:
    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        base_arn, case = split_test_case(state_machine_arn or "")
        if case is None:
            return original(self, state_machine_arn, *args, **kwargs)
        test_case = _resolve(self, base_arn, case)
        previous = getattr(_pending, "test_case", None)
        _pending.test_case = test_case
        try:
            return original(self, base_arn, *args, **kwargs)
        finally:
            _pending.test_case = previous

    start_execution.__wrapped__ = original  # type: ignore[attr-defined]
    return start_execution


def _get_start_execution_worker(self: Any) -> Any:
    from moto.stepfunctions.parser.backend.execution import Execution

    worker = PATCHES.original(Execution, "_get_start_execution_worker")(self)
    test_case = getattr(self, "mock_test_case", None)
    if test_case is None:
        test_case = getattr(_pending, "test_case", None)
        _pending.test_case = None  # one execution per StartExecution call
    if test_case is not None:
        self.mock_test_case = test_case
        worker._mock_test_case = test_case  # read by ExecutionWorker._get_evaluation_environment
    return worker


def install(config: str | os.PathLike[str] | Mapping[str, Any] | MockConfig | None = None) -> None:
    """Patch moto (idempotent); with ``config``, also :func:`load` it."""
    if config is not None:
        load(config)
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.mocking import mock_config
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for backend in (StepFunctionsParserBackend, StepFunctionBackend):
        patches.set(backend, "start_execution", _wrap_start_execution(backend.__dict__["start_execution"]))
    patches.set(Execution, "_get_start_execution_worker", _get_start_execution_worker)
    patches.set(mock_config, "load_mock_test_case_for", load_mock_test_case_for)


#: undo :func:`install` (the active configuration is kept)
uninstall = PATCHES.restore
installed = PATCHES.active


def start_execution_with_test_case(
    sfn_client: Any,
    state_machine_arn: str,
    test_case: str,
    input: Any = None,  # noqa: A002 - the StartExecution parameter's name
    name: str | None = None,
) -> dict[str, Any]:
    """StartExecution of ``state_machine_arn`` with a test case of the active configuration
    (the ``arn#TestCase`` form; needs :func:`install` in the process running moto).
    ``input``: a JSON string, or any JSON value (serialised); ``None`` -> ``{}``.
    ``name``: ``None`` -> a UUID."""
    if not test_case or TEST_CASE_SEPARATOR in test_case:
        raise ValueError(f"invalid test case name {test_case!r}")
    base_arn, existing = split_test_case(state_machine_arn)
    if existing is not None:
        raise ValueError(f"the state machine ARN already names a test case: {state_machine_arn!r}")
    params: dict[str, Any] = {
        "stateMachineArn": f"{base_arn}{TEST_CASE_SEPARATOR}{test_case}",
        "input": input if isinstance(input, str) else json.dumps({} if input is None else input),
    }
    # moto's engine backend names a nameless execution "None" (a second one then clashes);
    # AWS generates a UUID, so do that here
    params["name"] = name if name is not None else str(uuid.uuid4())
    return sfn_client.start_execution(**params)  # type: ignore[no-any-return]
