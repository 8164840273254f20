"""Run Lambda functions' real Python handlers in this process, instead of in Docker.

The gap in moto (5.2.5): moto runs a function's code only in a Docker container
(``moto/awslambda/models.py: LambdaFunction._invoke_lambda``), and with
``lambda.use_docker: False`` the API goes to ``awslambda_simple``, which echoes the payload
and runs no code. Local mode has no Docker, so without this module no handler ever runs.

What :func:`install` patches (idempotent):

- ``LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)``: the one point
  every invocation goes through (the Invoke API, Step Functions ``lambda:invoke`` tasks,
  S3/SNS/SQS notifications, EventBridge). moto must use its Docker-backed Lambda backend
  (``lambda.use_docker`` left at its default ``True``; ``localaws.server`` makes sure of
  it), otherwise the API path goes to ``awslambda_simple`` and never reaches this point.
  The replacement:

  * takes the code from the deployed zip (moto keeps the bytes), extracts it once per
    CodeSha256 into ``$AUTOLOOP_LOCAL_HOME/lambda/<sha256-hex>`` (default home
    ``.autoloop``); layers published to moto are extracted the same way and appended to
    ``sys.path``;
  * resolves ``Handler`` ``"module.function"``: a top-level module found in the zip is
    loaded by file path under a unique module name (several functions have ``app.py``);
    a dotted module is imported with the code folder first on ``sys.path`` (like
    ``/var/task``), so it is found in the zip first and otherwise on ``sys.path`` (for
    example a layer package installed in the venv). Modules that come from a function's
    folder are kept in a private table per function and swapped into ``sys.modules`` only
    during its invocations, so two functions' ``helpers.py`` do not collide;
  * keeps the loaded handler warm (module-level code runs once, as in a warm sandbox)
    until the code, handler, environment or endpoint changes, or :func:`reset` is called;
  * gives the invocation its own environment: the function's Environment variables over
    this process's, plus the runtime's own (``AWS_LAMBDA_FUNCTION_NAME``,
    ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``, ``AWS_REGION``, ...),
    ``POWERTOOLS_TRACE_DISABLED=true`` (no X-Ray daemon locally) and
    ``POWERTOOLS_METRICS_DISABLED=true`` unless the function's environment or this process's
    environment sets it;
  * passes a :class:`LambdaContext` (``get_remaining_time_in_millis`` counts down from the
    function ``Timeout``);
  * writes the handler's stdout/stderr to ``$AUTOLOOP_LOCAL_HOME/logs/<function>.log``
    (with ``START``/``END``/``REPORT`` lines like CloudWatch Logs) and to CloudWatch Logs, in
    the function's ``LoggingConfig.LogGroup`` (default ``/aws/lambda/<function>``), so the
    console stays readable;
  * on an exception returns ``{"errorType": <class name>, "errorMessage": str(exc),
    "stackTrace": [...]}`` and marks the invocation errored, so Step Functions
    ``Retry``/``Catch`` match on the class name, as on AWS. Import problems come back as
    ``Runtime.ImportModuleError`` / ``Runtime.UserCodeSyntaxError`` /
    ``Runtime.HandlerNotFound``, an unserialisable result as ``Runtime.MarshalError``;
  * enforces ``Timeout`` approximately: the handler runs on its own thread; when it runs
    over, the invocation returns ``errorType`` ``Sandbox.Timedout`` and the thread gets an
    asynchronous exception (see Limitations).

- :func:`set_fault_hook`: a hook run before each handler (used by ``localaws.faults`` to
  make a function raise, or run past its ``Timeout``, a given number of times).

- ``LambdaFunction.invoke`` for ``InvocationType=Event``: moto runs "asynchronous"
  invocations synchronously in the caller's request. Here they are queued onto a
  background worker and the call returns 202 at once. The worker applies Lambda's
  asynchronous retry semantics, simplified: invoke; on error retry up to
  ``MaximumRetryAttempts`` (default 2, from the function's event invoke config) times,
  immediately; then log the failure (logger ``localaws.awslambda.runtime``, the function's log
  file and :func:`async_failures`). :func:`drain` waits for that queue.
  ``localaws.events.delivery`` delivers to Lambda targets through this path.

Concurrency: invocations run concurrently, as on AWS (each on its own handler thread; there
is no process-wide lock, and a handler may invoke another function synchronously). Each
needs its own environment, while handlers, boto3 and Powertools read ``os.environ``: so
:func:`install` puts :class:`ThreadEnviron` in place of ``os.environ``, a mapping that on a
handler thread resolves to that invocation's own dict (a copy of the process environment
with the function's variables over it) and on every other thread to the real environment.
Two functions with different values for one variable, invoked at once, each read their own;
what a handler writes stays in its invocation. Asynchronous (``Event``) invocations run on
a pool of up to :data:`ASYNC_CONCURRENCY` worker threads (:func:`set_async_concurrency`).
Functions whose code folders hold modules of the same top-level name (other than the
handler module, which is loaded under a unique name) cannot share ``sys.modules``: their
invocations wait for each other; invocations of one function, or of functions with only
their handler module, never wait.

Limitations:
- The timeout is soft. Python cannot kill a thread: the runaway handler thread gets an
  asynchronous ``SandboxTimedout`` exception, which is raised only when it next runs Python
  bytecode (not inside a blocking C call such as one long ``time.sleep`` or a socket
  read). Until then it keeps running in the background (with its own environment still),
  after its invocation has returned ``Sandbox.Timedout``.
- Output is routed per thread: what the handler's own thread prints (``print``,
  ``logging``, Powertools Logger) goes to the function's log; output of threads the
  handler starts itself goes to the console.
- Image functions (``PackageType=Image``) and non-Python runtimes are not run.
- Memory size is reported, not enforced; there is no concurrency limit and no cold start
  per concurrent request (one warm sandbox per function): concurrent invocations of a
  function share its module globals, as they would not on AWS, so handler code that keeps
  per-request state in globals must not rely on that locally either. Layer modules (the
  ``autoloop`` package, Powertools' Logger and Metrics singletons) are shared by every
  function in the process, so the keys a Logger appends for one invocation can show in the
  lines of another that runs at the same time.
- The environment is per thread: threads a handler starts itself, and subprocesses it runs
  without ``env=``, see the process environment, not the function's.
"""

from __future__ import annotations

import ctypes
import decimal
import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from localaws import local_home
from localaws.patching import Patches

LOG = logging.getLogger(__name__)

#: How long an invocation waits for another function that shares a module name with it.
LOCK_WAIT_SECONDS = 900.0
#: Worker threads that run asynchronous (``Event``) invocations at once.
ASYNC_CONCURRENCY = 8
#: Time allowed for module-level code (Lambda's init phase) in addition to ``Timeout``.
INIT_TIMEOUT_SECONDS = 10.0
#: Bytes of log output returned with ``LogType=Tail`` (as on AWS).
LOG_TAIL_BYTES = 4096
_BUFFER_LIMIT = 256 * 1024

PATCHES = Patches("lambda_runtime")
_fault_hook: Callable[[str, Any, Any], None] | None = None

_state_lock = threading.Lock()
_counts: Counter[str] = Counter()
_warm: dict[str, _Loaded] = {}
_layer_paths: set[str] = set()
# thread ident -> capture of the invocation running on that thread
_routes: dict[int, _Capture] = {}
_log_files: dict[Path, io.TextIOWrapper] = {}
_log_files_lock = threading.Lock()


# --------------------------------------------------------------------------- environment per invocation


class ThreadEnviron(MutableMapping[str, str]):
    """Stands in for ``os.environ`` while the runtime is installed: on a thread running an
    invocation (:meth:`bind`) it is that invocation's own dict, elsewhere the process's real
    ``os.environ`` (reads and writes pass through, ``putenv`` included)."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self._local = threading.local()

    def _env(self) -> MutableMapping[str, str]:
        env: dict[str, str] | None = getattr(self._local, "env", None)
        return self.base if env is None else env

    @contextmanager
    def bind(self, values: dict[str, str]) -> Iterator[dict[str, str]]:
        """This thread's environment is the process's with ``values`` over it, until exit."""
        env = {**self.base, **values}
        saved = getattr(self._local, "env", None)
        self._local.env = env
        try:
            yield env
        finally:
            self._local.env = saved

    def bound(self) -> bool:
        return getattr(self._local, "env", None) is not None

    def __getitem__(self, key: str) -> str:
        return self._env()[key]

    def get(self, key: str, default: Any = None) -> Any:  # os.getenv's path: no KeyError round trip
        return self._env().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._env()

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"str expected, not {type(key if not isinstance(key, str) else value).__name__}")
        self._env()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._env()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._env()))

    def __len__(self) -> int:
        return len(self._env())

    def __repr__(self) -> str:
        return f"environ({dict(self._env())!r})"

    def copy(self) -> dict[str, str]:
        return dict(self._env())

    def __or__(self, other: Any) -> dict[str, str]:
        return {**self._env(), **dict(other)}

    def __ror__(self, other: Any) -> dict[str, str]:
        return {**dict(other), **self._env()}

    def __ior__(self, other: Any) -> ThreadEnviron:  # type: ignore[misc,override]
        self.update(other)
        return self


_base_environ: MutableMapping[str, str] = os.environ
environ = ThreadEnviron(_base_environ)

# --------------------------------------------------------------------------- public API


def install() -> None:
    """Patch moto so Lambda invocations run the real handlers here. Idempotent."""
    PATCHES.apply(_patch)


def _patch(patches: Patches) -> None:
    from moto.awslambda.models import LambdaFunction

    patches.set(LambdaFunction, "_invoke_lambda", _invoke_lambda)
    patches.set(LambdaFunction, "invoke", _invoke)
    if os.environ is not environ:
        environ.base = os.environ  # whatever is there now (a test may have replaced it)
        patches.set(os, "environ", environ)


#: undo :func:`install` (moto goes back to Docker)
uninstall = PATCHES.restore
installed = PATCHES.active


def set_fault_hook(hook: Callable[[str, Any, LambdaContext], None] | None) -> None:
    """Install (or, with ``None``, remove) a fault-injection hook (:mod:`localaws.faults`).

    The hook runs on the handler's thread, after the init phase and after the ``Timeout``
    clock has started, just before the handler: ``hook(function_name, event, context)``.
    An exception it raises is the invocation's error (as if the handler raised it), and
    time it spends counts against ``Timeout``, so a hook that sleeps past it makes the
    invocation end as a Lambda timeout (``Sandbox.Timedout``).
    """
    global _fault_hook
    _fault_hook = hook


def invocations() -> dict[str, int]:
    """Handler runs per function name since the last :func:`reset_invocations` (retries and
    errors included)."""
    with _state_lock:
        return dict(_counts)


def reset_invocations() -> None:
    with _state_lock:
        _counts.clear()


def reset() -> None:
    """Forget warm handlers (next invocation is a cold start), close log files, drop the
    asynchronous queue's pending items and the recorded failures. Invocation counts are
    kept (see :func:`reset_invocations`)."""
    discard_pending()
    with _state_lock:
        _warm.clear()
        _async_failures.clear()
    with _log_files_lock:
        for fh in _log_files.values():
            try:
                fh.close()
            except OSError:
                pass
        _log_files.clear()


def log_path(function_name: str) -> Path:
    """Where a function's output goes."""
    return local_home() / "logs" / f"{_safe(function_name)}.log"


def drain(timeout: float = 30.0) -> bool:
    """Wait until the asynchronous invocation queue is empty and idle (bounded).
    Returns False if it is still busy after ``timeout`` seconds."""
    return _async.drain(timeout)


def discard_pending() -> int:
    """Drop queued asynchronous invocations that have not started. Returns how many."""
    return _async.discard()


def async_failures() -> list[dict[str, Any]]:
    """Asynchronous invocations that failed after all retries (most recent last)."""
    with _state_lock:
        return list(_async_failures)


# --------------------------------------------------------------------------- context


@dataclass
class LambdaContext:
    """The parts of the Lambda context object handlers and Powertools use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: float
    identity: Any = None
    client_context: Any = None
    tenant_id: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def _start_clock(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        deadline = self._deadline or (time.monotonic() + self.timeout_seconds)
        return max(0, int((deadline - time.monotonic()) * 1000))


class SandboxTimedout(BaseException):  # noqa: N818 (named like Lambda's error type)
    """Raised asynchronously in a handler thread that ran over the function Timeout.
    A BaseException so that handlers' ``except Exception`` does not swallow it."""


class _LambdaFault(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


# --------------------------------------------------------------------------- output capture


class _Capture:
    """One invocation's output: appended to the function's log file and kept in memory."""

    def __init__(self, fh: io.TextIOWrapper) -> None:
        self._fh = fh
        self._parts: list[str] = []
        self._size = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            try:
                self._fh.write(text)
                self._fh.flush()
            except (ValueError, OSError):  # closed by reset(); keep the text in memory
                pass
            if self._size < _BUFFER_LIMIT:
                self._parts.append(text)
                self._size += len(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)


class _Router(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr during invocations. Writes from a handler's
    thread go to that invocation's capture, others to the stream that was there before."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self.fallback: Any = getattr(sys, name)

    def _target(self) -> Any:
        capture = _routes.get(threading.get_ident())
        if capture is not None:
            return capture
        current = getattr(sys, self._name)
        if current is self:
            return self.fallback
        return current

    def write(self, text: str) -> int:
        target = self._target()
        if target is None:
            return len(text)
        return int(target.write(text) or 0)

    def flush(self) -> None:
        target = self._target()
        if target is not None and hasattr(target, "flush"):
            target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return int(self.fallback.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


_routers: dict[str, _Router] = {}


_routing_lock = threading.Lock()
_routing: dict[str, Any] = {"users": 0, "saved": {}, "environ": None}


@contextmanager
def _routed_output() -> Iterator[None]:
    """Install the routers as sys.stdout/sys.stderr while any invocation runs (the first one
    in installs them, the last one out puts the streams back). The same for :data:`environ`
    in place of ``os.environ``, when :func:`install` has not put it there for good
    (:func:`invoke_here` without the patches)."""
    with _routing_lock:
        if _routing["users"] == 0:
            if os.environ is not environ:
                environ.base = os.environ
                _routing["environ"] = os.environ
                setattr(os, "environ", environ)  # noqa: B010 (on purpose: see ThreadEnviron)
            saved: dict[str, Any] = {}
            for name in ("stdout", "stderr"):
                router = _routers.get(name)
                if router is None:
                    router = _routers[name] = _Router(name)
                current = getattr(sys, name)
                if current is not router:
                    router.fallback = current
                    saved[name] = current
                    setattr(sys, name, router)
            _routing["saved"] = saved
        _routing["users"] += 1
    try:
        yield
    finally:
        with _routing_lock:
            _routing["users"] -= 1
            if _routing["users"] == 0:
                for name, previous in _routing["saved"].items():
                    if getattr(sys, name) is _routers[name]:
                        setattr(sys, name, previous)
                _routing["saved"] = {}
                if _routing["environ"] is not None and os.environ is environ and not PATCHES.active():
                    setattr(os, "environ", _routing["environ"])  # noqa: B010
                _routing["environ"] = None


def _log_file(function_name: str) -> io.TextIOWrapper:
    path = log_path(function_name)
    with _log_files_lock:
        fh = _log_files.get(path)
        if fh is None or fh.closed:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open, closed in reset)
            _log_files[path] = fh
        return fh


# --------------------------------------------------------------------------- code and modules


@dataclass
class _Loaded:
    handler: Callable[..., Any]
    code_dir: Path | None
    shadow: frozenset[str]
    private: dict[str, ModuleType]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _extract(code: bytes, kind: str, digest: str | None = None) -> Path:
    """Extract a zip once per content hash (SHA-256, hex); returns the folder."""
    digest = digest or hashlib.sha256(code).hexdigest()
    target = local_home() / kind / digest
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            archive.extractall(tmp)
        try:
            tmp.rename(target)
        except OSError:  # extracted concurrently by someone else
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _add_layers(fn: Any) -> None:
    """Extract the function's layers (published to moto) and append them to sys.path."""
    if not fn.layers:
        return
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[fn.account_id][fn.region]
    for layer in fn.layers:
        try:
            version = backend.layers_versions_by_arn(layer["Arn"])
            code = getattr(version, "code_bytes", b"") if version else b""
            if not code:
                continue
            folder = _extract(code, "lambda-layers")
        except Exception as exc:  # a broken layer should not hide the handler's own error
            LOG.warning("layer %s of %s not usable locally: %s", layer, fn.function_name, exc)
            continue
        for candidate in (folder / "python", folder):
            path = str(candidate)
            with _state_lock:
                if candidate.is_dir() and path not in _layer_paths:
                    _layer_paths.add(path)
                    sys.path.append(path)
                    break


def _top_names(code_dir: Path | None) -> frozenset[str]:
    if code_dir is None:
        return frozenset()
    names = set()
    for entry in code_dir.iterdir():
        if entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
        elif entry.is_dir() and entry.name.isidentifier() and entry.name != "__pycache__":
            names.add(entry.name)
    return frozenset(names)


def _is_under(module: ModuleType, prefix: str) -> bool:
    location = getattr(module, "__file__", None)
    if location:
        return str(location).startswith(prefix)
    paths: Any = getattr(module, "__path__", None)
    if not paths:
        return False
    try:
        return all(str(p).startswith(prefix) for p in paths)
    except TypeError:
        return False


# module-name sharing between concurrent invocations (see _module_scope)
_names_cond = threading.Condition()
_name_owner: dict[str, str] = {}  # top-level module name -> code folder whose invocations hold it
_folder_users: dict[str, int] = {}  # code folder -> invocations running from it
_folder_displaced: dict[str, dict[str, ModuleType]] = {}


@contextmanager
def _module_scope(code_dir: Path | None, shadow: frozenset[str], private: dict[str, ModuleType],  # type: ignore[no-untyped-def]
                  exclusive: frozenset[str] = frozenset()):
    """Code folder on sys.path; the function's own modules in sys.modules, modules of the
    same name from elsewhere moved aside; all swapped back when the folder's last running
    invocation ends. ``exclusive`` (the folder's module names other than the handler's):
    first wait until no invocation from another folder holds one of them."""
    if code_dir is None:
        yield
        return
    folder = str(code_dir)
    prefix = folder + os.sep

    def free() -> bool:
        return all(_name_owner.get(name, folder) == folder for name in exclusive)

    with _names_cond:
        if not _names_cond.wait_for(free, LOCK_WAIT_SECONDS):
            raise _LambdaFault("Local.InvocationLockTimeout",
                               f"waited {LOCK_WAIT_SECONDS:.0f} s for another function that also has modules named "
                               f"{', '.join(sorted(exclusive))} in its code")
        for name in exclusive:
            _name_owner[name] = folder
        if _folder_users.get(folder, 0) == 0:
            displaced: dict[str, ModuleType] = {}
            for name in list(sys.modules):
                if name.split(".")[0] in shadow:
                    module = sys.modules.get(name)
                    if module is not None and not _is_under(module, prefix):
                        displaced[name] = sys.modules.pop(name)
            _folder_displaced[folder] = displaced
            sys.modules.update(private)
            sys.path.insert(0, folder)
        _folder_users[folder] = _folder_users.get(folder, 0) + 1
    try:
        yield
    finally:
        with _names_cond:
            _folder_users[folder] -= 1
            if _folder_users[folder] == 0:
                del _folder_users[folder]
                try:
                    sys.path.remove(folder)
                except ValueError:
                    pass
                for name in list(sys.modules):
                    if name.split(".")[0] in shadow:
                        module = sys.modules.get(name)
                        if module is not None and _is_under(module, prefix):
                            private[name] = sys.modules.pop(name)
                for name, module in _folder_displaced.pop(folder, {}).items():
                    sys.modules.setdefault(name, module)
                for name in [n for n, owner in _name_owner.items() if owner == folder]:
                    del _name_owner[name]
            _names_cond.notify_all()


def _load_handler(fn: Any, code_dir: Path | None, private: dict[str, ModuleType]) -> Callable[..., Any]:
    handler_spec = fn.handler or ""
    try:
        module_name, attr = handler_spec.rsplit(".", 1)
    except ValueError:
        raise _LambdaFault(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler_spec}': not enough values to unpack (expected 2, got 1)",
        ) from None
    module_name = module_name.replace("/", ".")
    try:
        module = _import_handler_module(fn, module_name, code_dir)
    except ImportError as exc:
        raise _LambdaFault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise _LambdaFault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    try:
        handler = getattr(module, attr)
    except AttributeError:
        raise _LambdaFault("Runtime.HandlerNotFound", f"Handler '{attr}' missing on module '{module_name}'") from None
    if not callable(handler):
        raise _LambdaFault("Runtime.HandlerNotFound", f"Handler '{attr}' on module '{module_name}' is not callable")
    return handler  # type: ignore[no-any-return]


def _import_handler_module(fn: Any, module_name: str, code_dir: Path | None) -> ModuleType:
    if code_dir is not None and "." not in module_name:
        file = code_dir / f"{module_name}.py"
        package = code_dir / module_name / "__init__.py"
        location = file if file.is_file() else package if package.is_file() else None
        if location is not None:
            unique = "_autoloop_lambda_{}_{}_{}".format(
                re.sub(r"\W", "_", fn.function_name), code_dir.name[:12], module_name
            )
            spec = importlib.util.spec_from_file_location(
                unique,
                location,
                submodule_search_locations=[str(location.parent)] if location is package else None,
            )
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {location}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(unique, None)
                raise
            return module
    # dotted, or not in the zip: the code folder is first on sys.path (like /var/task),
    # then the venv and layers.
    return importlib.import_module(module_name)


def _warm_key(fn: Any) -> str:
    return json.dumps(
        [
            fn.function_arn,
            str(fn.version),
            getattr(fn, "code_digest", "") or getattr(fn, "code_sha_256", ""),
            fn.handler,
            fn.environment_vars,
            fn.timeout,
            fn.memory_size,
            os.environ.get("AWS_ENDPOINT_URL", ""),
            [layer.get("Arn") for layer in fn.layers],
        ],
        sort_keys=True,
        default=str,
    )


# --------------------------------------------------------------------------- environment


def _function_env(fn: Any, context: LambdaContext, code_dir: Path | None) -> dict[str, str]:
    env = {str(k): str(v) for k, v in (fn.environment_vars or {}).items()}
    metrics_disabled = env.get("POWERTOOLS_METRICS_DISABLED", os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"))
    env.update(
        {
            "_HANDLER": str(fn.handler),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": context.function_version,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
            "AWS_LAMBDA_LOG_GROUP_NAME": context.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": context.log_stream_name,
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": metrics_disabled,
        }
    )
    if code_dir is not None:
        env["LAMBDA_TASK_ROOT"] = str(code_dir)
    return env


# --------------------------------------------------------------------------- invocation


def _normalise_event(event: Any) -> Any:
    # moto's LambdaFunction.invoke passes the parsed JSON body, or the string "{}" for an
    # empty body.
    if event is None or (isinstance(event, str) and event == "{}"):
        return {}
    return event


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error_payload(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, _LambdaFault):
        return {"errorType": exc.error_type, "errorMessage": str(exc), "stackTrace": []}
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_list(frames),
    }


def invoke_here(function: Any, event: Any) -> tuple[str, bool, str]:
    """Run ``function`` (moto's ``LambdaFunction``) on ``event`` in this process, whether or
    not :func:`install` has patched moto: (payload, errored, logs), as ``_invoke_lambda``."""
    return _invoke_lambda(function, event)


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for ``LambdaFunction._invoke_lambda``: run the handler here."""
    with _state_lock:
        _counts[self.function_name] += 1
    return _run(self, _normalise_event(event))


def _run(fn: Any, event: Any) -> tuple[str, bool, str]:
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    version = "$LATEST" if str(fn.version) == "$LATEST" else str(fn.version)
    context = LambdaContext(
        function_name=fn.function_name,
        function_version=version,
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=int(fn.memory_size),
        aws_request_id=request_id,
        log_group_name=fn.logs_group_name,
        log_stream_name=f"{now:%Y/%m/%d}/[{version}]{uuid.uuid4().hex}",
        timeout_seconds=float(fn.timeout or 3),
    )
    capture = _Capture(_log_file(fn.function_name))
    capture.write(f"START RequestId: {request_id} Version: {version}\n")
    started = time.monotonic()
    result: dict[str, Any] = {}
    try:
        if getattr(fn, "package_type", "Zip") != "Zip" or not str(fn.run_time or "").startswith("python"):
            raise _LambdaFault(
                "Local.Unsupported",
                f"local Lambda runs Python zip functions only (got {fn.package_type} {fn.run_time})",
            )
        code = getattr(fn, "code_bytes", b"")
        code_dir = _extract(code, "lambda", getattr(fn, "code_digest", None)) if code else None
        _add_layers(fn)
        env = _function_env(fn, context, code_dir)
        with _routed_output():
            result = _run_on_thread(fn, event, context, code_dir, env, capture)
    except _LambdaFault as fault:
        result = {"error": fault}
    duration_ms = (time.monotonic() - started) * 1000

    if "error" in result:
        exc = result["error"]
        payload = _error_payload(exc)
        detail = "".join(traceback.format_exception(exc)) if not isinstance(exc, _LambdaFault) else ""
        capture.write(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}\n{detail}")
        body, errored = json.dumps(payload), True
    else:
        try:
            body, errored = json.dumps(result.get("value"), default=_json_default), False
        except (TypeError, ValueError) as exc:
            payload = {
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"Unable to marshal response: {exc}",
                "stackTrace": [],
            }
            capture.write(f"[ERROR] Runtime.MarshalError: {exc}\n")
            body, errored = json.dumps(payload), True
    capture.write(f"END RequestId: {request_id}\n")
    capture.write(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tMemory Size: {fn.memory_size} MB\n")
    output = capture.text()
    _save_cloudwatch(fn, context.log_stream_name, output)
    tail = output.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", errors="ignore")
    return body, errored, tail


def _run_on_thread(
    fn: Any,
    event: Any,
    context: LambdaContext,
    code_dir: Path | None,
    env: dict[str, str],
    capture: _Capture,
) -> dict[str, Any]:
    key = _warm_key(fn)
    with _state_lock:
        loaded = _warm.get(key)
    initialised = threading.Event()
    finished = threading.Event()
    result: dict[str, Any] = {}
    shadow = loaded.shadow if loaded else _top_names(code_dir)
    private = loaded.private if loaded else {}

    def target() -> None:
        nonlocal loaded
        _routes[threading.get_ident()] = capture
        try:
            with environ.bind(env), _module_scope(code_dir, shadow, private, shadow - _handler_names(fn, code_dir)):
                if loaded is None:
                    with _cold_start_lock(key):  # concurrent cold starts of one function load it once
                        with _state_lock:
                            loaded = _warm.get(key)
                        if loaded is None:
                            handler = _load_handler(fn, code_dir, private)
                            loaded = _Loaded(handler, code_dir, shadow, private)
                            with _state_lock:
                                _warm[key] = loaded
                context._start_clock()
                initialised.set()
                hook = _fault_hook
                if hook is not None:  # localaws.faults: raise, or run past the Timeout, first
                    hook(fn.function_name, event, context)
                result["value"] = loaded.handler(event, context)
        except SandboxTimedout:
            result["timed_out"] = True
        except BaseException as exc:  # the handler's error is the invocation's result
            result["error"] = exc
        finally:
            initialised.set()
            finished.set()
            _routes.pop(threading.get_ident(), None)

    thread = threading.Thread(target=target, name=f"lambda:{fn.function_name}", daemon=True)
    thread.start()
    if initialised.wait(max(INIT_TIMEOUT_SECONDS, context.timeout_seconds)):
        while not finished.is_set():
            remaining = context.get_remaining_time_in_millis() / 1000
            if remaining <= 0:
                break
            finished.wait(remaining)
    if finished.is_set() and not result.get("timed_out"):
        return result

    # ran over: interrupt the thread at its next bytecode, give it a moment to unwind
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SandboxTimedout))
    finished.wait(0.2)
    message = f"RequestId: {context.aws_request_id} Error: Task timed out after {context.timeout_seconds:.2f} seconds"
    return {"error": _LambdaFault("Sandbox.Timedout", message)}


_cold_locks: dict[str, threading.Lock] = {}


def _cold_start_lock(key: str) -> threading.Lock:
    with _state_lock:
        return _cold_locks.setdefault(key, threading.Lock())


def _handler_names(fn: Any, code_dir: Path | None) -> frozenset[str]:
    """The handler's own top-level module, which is loaded under a unique name (not shared)."""
    module = str(fn.handler or "").rsplit(".", 1)[0]
    if code_dir is None or "." in module or "/" in module:
        return frozenset()
    return frozenset({module})


def _save_cloudwatch(fn: Any, stream: str, output: str) -> None:
    # the function's group: LoggingConfig.LogGroup, else /aws/lambda/<name> (localaws.logs.shipping)
    from localaws.logs import shipping

    shipping.put_quietly(fn.logs_group_name, stream, output.splitlines(), account_id=fn.account_id, region=fn.region)


# --------------------------------------------------------------------------- async (Event)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    if value is not None:
        return str(value)
    for key, val in dict(headers).items():
        if str(key).lower() == name.lower():
            return str(val)
    return None


def _invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
    """Replacement for ``LambdaFunction.invoke``: ``Event`` invocations are queued."""
    if (_header(request_headers, "x-amz-invocation-type") or "").lower() == "event":
        _async.submit(self, body)
        return ""
    return _moto_invoke(self, body, request_headers, response_headers)


def _moto_invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
    """moto's own ``LambdaFunction.invoke``."""
    from moto.awslambda.models import LambdaFunction

    return PATCHES.original(LambdaFunction, "invoke")(fn, body, request_headers, response_headers)


_async_failures: list[dict[str, Any]] = []


class _AsyncInvoker:
    """A pool of up to :data:`ASYNC_CONCURRENCY` worker threads for asynchronous invocations,
    started on demand, with a bounded drain."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._pending = 0
        self._idle = 0
        self._running = 0
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.concurrency = ASYNC_CONCURRENCY

    def submit(self, fn: Any, body: Any) -> None:
        with self._cond:
            self._pending += 1
            self._queue.put((fn, body))
            self._threads = [t for t in self._threads if t.is_alive()]
            if self._idle < self._queue.qsize() and len(self._threads) < self.concurrency:
                thread = threading.Thread(target=self._work, name=f"lambda-async-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                self._idle += 1  # counted idle until it takes its first item
                thread.start()

    def drain(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def discard(self) -> int:
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += 1
        if dropped:
            with self._cond:
                self._pending -= dropped
                self._cond.notify_all()
        return dropped

    def _work(self) -> None:
        while True:
            fn, body = self._queue.get()
            with self._cond:
                self._idle -= 1
                # a lowered concurrency applies to workers started before it, too
                self._cond.wait_for(lambda: self._running < self.concurrency)
                self._running += 1
            try:
                _deliver_async(fn, body)
            except Exception:
                LOG.exception("asynchronous invocation of %s failed", fn.function_name)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._running -= 1
                    self._idle += 1
                    self._cond.notify_all()


def set_async_concurrency(workers: int) -> int:
    """How many asynchronous invocations run at once (1: one at a time).
    Returns the previous value."""
    if workers < 1:
        raise ValueError(f"set_async_concurrency: {workers!r} workers; give at least 1")
    with _async._cond:
        previous, _async.concurrency = _async.concurrency, workers
        _async._cond.notify_all()
    return previous


_async = _AsyncInvoker()


def _max_retries(fn: Any) -> int:
    for config in reversed(getattr(fn, "event_invoke_config", None) or []):
        value = getattr(config, "config", {}).get("MaximumRetryAttempts")
        if value is not None:
            return int(value)
    return 2


def _deliver_async(fn: Any, body: Any) -> None:
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    attempts = 1 + _max_retries(fn)
    payload: Any = None
    for attempt in range(1, attempts + 1):
        response_headers: dict[str, Any] = {}
        payload = _moto_invoke(fn, body, {"x-amz-invocation-type": "RequestResponse"}, response_headers)
        if "x-amz-function-error" not in response_headers:
            return
        LOG.info("async invocation of %s failed (attempt %d/%d)", fn.function_name, attempt, attempts)
    text = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
    record = {
        "function_name": fn.function_name,
        "attempts": attempts,
        "payload": body,
        "error": text,
        "time": datetime.now(UTC).isoformat(),
    }
    with _state_lock:
        _async_failures.append(record)
    LOG.warning(
        "asynchronous invocation of %s failed after %d attempts: %s",
        fn.function_name,
        attempts,
        text,
    )
    try:
        _Capture(_log_file(fn.function_name)).write(f"[ASYNC] giving up after {attempts} attempts: {text}\n")
    except OSError:
        pass
