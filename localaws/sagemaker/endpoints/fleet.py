"""The serving fleet of a local SageMaker endpoint: model-server worker processes per variant.

Gap in moto: an endpoint is a record that is ``InService`` at once; no model is downloaded
or loaded and nothing answers invocations. On SageMaker each production variant is a fleet
of instances running the model's container: the platform extracts ``model.tar.gz`` to
``/opt/ml/model``, and the container (sagemaker-inference-toolkit behind a model server
with ``SAGEMAKER_MODEL_SERVER_WORKERS`` worker processes) imports ``SAGEMAKER_PROGRAM``,
calls ``model_fn`` once per worker, and answers ``/invocations`` with
``input_fn``/``predict_fn``/``output_fn``. Here each variant of a fleet gets:

- a sandbox ``<work_root>/endpoints/<endpoint>/<config>-<n>/<variant>/`` whose ``opt/ml``
  is the workers' ``/opt/ml`` (a real one in their own mount namespace where Linux allows
  it, else by rewriting: :mod:`localaws.sagemaker.optml`); the model and its code are fetched by
  ``localaws.sagemaker.inference.model.load_model`` (as batch transform does: the Model's
  ``PrimaryContainer`` ``ModelDataUrl`` and ``Environment``, code from ``model.tar.gz:code/``
  or ``SAGEMAKER_SUBMIT_DIRECTORY``);
- N persistent worker processes running :mod:`localaws.sagemaker.inference.worker` (the
  same loader and handler-calling code batch transform uses), each answering one request
  at a time over its stdin/stdout pipes (a JSON header line plus the payload bytes, each
  way). Their stderr (the model's prints and tracebacks) goes to ``logs/worker-<i>.txt``,
  copied as it grows to CloudWatch Logs ``/aws/sagemaker/Endpoints/<endpoint>``, stream
  ``<variant>/<instance-id>`` (:mod:`localaws.logs.shipping`);
- an idle-worker queue: a request takes a free worker, waiting while all are busy (the
  model server's job queue), and gives it back afterwards. A worker that dies or times out
  is replaced in the background.

N is the Model's ``SAGEMAKER_MODEL_SERVER_WORKERS``, else the extension's
``workers_per_variant`` (default: the CPU count, at most 4); serverless variants use at most
``MaxConcurrency``. ``InitialInstanceCount`` is reported, not multiplied.

Why processes and not the module loaded in a thread pool, measured on this project's 2-vCPU
machine with the churn model (pandas, ColumnTransformer and LogisticRegression; about 4.9 ms
of CPU per single-row prediction, nearly all Python holding the GIL): handlers called from
8 threads in one interpreter top out at about 210 predictions/s whatever the thread count,
and would hold the GIL that the moto server's threads need; one worker process does about
200/s on its own core, and a pipe round trip costs about 0.07 ms (tiny model). Processes
also isolate models: ``ml/inference.py`` keeps the loaded model in a module global, so a
blue and a green model could not share one interpreter.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import queue
import random
import re
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from localaws.clients import client
from localaws.logs import shipping
from localaws.sagemaker import runtimes
from localaws.sagemaker.endpoints.capture import CaptureSettings
from localaws.sagemaker.inference.model import WORKER_SCRIPT, load_model
from localaws.sagemaker.optml import root_for
from localaws.sagemaker.sandbox import JobFailure, env_with, fresh_dir, kill_process_group, truncate

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16
#: thread pools of numpy/BLAS: one thread per worker process unless the Model says otherwise
_SINGLE_THREADED = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class FleetError(Exception):
    """The fleet could not start; ``reason`` quotes the model's error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerGone(Exception):
    """The worker process exited or broke the protocol."""


class WorkerTimeout(Exception):
    """The worker did not answer in time."""


def safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", value)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# --- one model-server process ----------------------------------------------------------------


class WorkerProcess:
    """One model-server worker: a subprocess answering framed requests on its pipes.

    Not thread-safe by itself: the variant's idle queue hands it to one request at a time.
    """

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        with log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(  # noqa: S603 - the model's own server, by contract
                cmd,
                env=env,
                cwd=str(cwd),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
                bufsize=0,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._poll = select.poll()
        self._poll.register(self._out, select.POLLIN)
        self._buf = bytearray()
        self.served = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _gone(self) -> WorkerGone:
        code = self.proc.poll()
        if code is None:
            return WorkerGone("the model server closed its output")
        return WorkerGone(f"the model server process exited (code {code})")

    def _fill(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout
            if self._poll.poll(remaining * 1000.0):
                break
        chunk = os.read(self._out, _READ_CHUNK)
        if not chunk:
            raise self._gone()
        self._buf += chunk

    def _line(self, deadline: float) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return line
            self._fill(deadline)

    def _exact(self, size: int, deadline: float) -> bytes:
        while len(self._buf) < size:
            self._fill(deadline)
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._in, view)
                view = view[written:]
        except OSError:  # BrokenPipeError: the worker is gone
            raise self._gone() from None

    def wait_ready(self, deadline: float) -> str | None:
        """None once the model is loaded; else the reason it is not."""
        try:
            header = json.loads(self._line(deadline))
        except WorkerTimeout:
            return "the model server did not become healthy in time"
        except WorkerGone as gone:
            return str(gone)
        except ValueError:
            return "the model server wrote something other than the protocol on stdout"
        if header.get("ready"):
            return None
        return str(header.get("error") or "model loading failed")

    def call(
        self, payload: bytes, content_type: str | None, accept: str | None, timeout: float
    ) -> tuple[dict[str, Any], bytes]:
        """One invocation: (answer header, body). Raises WorkerGone / WorkerTimeout."""
        request = json.dumps({"n": len(payload), "content_type": content_type, "accept": accept})
        self._write(request.encode("utf-8") + b"\n" + payload)
        deadline = time.monotonic() + timeout
        try:
            header = json.loads(self._line(deadline))
        except ValueError:
            raise WorkerGone("the model server broke the protocol") from None
        size = int(header.get("n") or 0)
        body = self._exact(size, deadline) if size else b""
        self.served += 1
        return header, body

    def stop(self, grace: float = 2.0) -> None:
        """Close its stdin (it exits at EOF), then SIGTERM and SIGKILL its process group."""
        proc = self.proc
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if proc.poll() is not None:
            return
        try:
            proc.wait(timeout=min(grace, 0.5))
            return
        except subprocess.TimeoutExpired:
            pass
        kill_process_group(proc, grace)


# --- a production variant ------------------------------------------------------------------------



class Variant:
    """One production variant of a fleet: its model, sandbox and worker processes."""

    def __init__(self, spec: dict[str, Any], fleet_dir: Path, workers_default: int) -> None:
        self.spec = spec
        self.name: str = spec["VariantName"]
        self.model_name: str = spec["ModelName"]
        weight = spec.get("InitialVariantWeight")
        self.weight = 1.0 if weight is None else float(weight)
        self.instance_count = spec.get("InitialInstanceCount")
        self.serverless: dict[str, Any] | None = spec.get("ServerlessConfig")
        self.sandbox = fleet_dir / safe_name(self.name)
        self.workers_default = workers_default
        self.startup_timeout = float(spec.get("ContainerStartupHealthCheckTimeoutInSeconds") or 600)
        self.idle: queue.SimpleQueue[WorkerProcess] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.workers: list[WorkerProcess] = []
        self.starting = 0
        self.closing = False
        self.image = ""
        self.default_accept = "application/json"
        self._cmd: list[str] = []
        self._env: dict[str, str] = {}
        self._cwd = self.sandbox
        self._spawned = 0
        # CloudWatch Logs: /aws/sagemaker/Endpoints/<endpoint>, stream <variant>/<instance-id>
        self.log_target: tuple[str, str, str | None, str | None] | None = None  # group, stream, account, region
        self._logs: list[Path] = []
        self._runtime_line = ""

    # start-up
    def prepare(self) -> int:
        """Fetch the model into the sandbox; returns how many workers to start."""
        fresh_dir(self.sandbox)
        try:
            root = root_for(self.sandbox)
            env_model, model_dir, code_dir, program, self.image = load_model(
                self.sandbox, self.model_name, None, client("s3"))
            chosen = runtimes.interpreter(self.image, code_dir / "requirements.txt")
        except JobFailure as failure:
            raise FleetError(failure.reason) from None
        except runtimes.RuntimeUnavailable as exc:
            raise FleetError(f"local runtime: {exc}") from None
        self._runtime_line = chosen.line
        container_env = {k: root.rewrite(v) for k, v in env_model.items()}
        pythonpath = os.pathsep.join(p for p in (root.seen(code_dir), os.environ.get("PYTHONPATH")) if p)
        container_env.update(SAGEMAKER_PROGRAM=program, PYTHONPATH=pythonpath)
        for var in _SINGLE_THREADED:
            container_env.setdefault(var, "1")
        self.default_accept = env_model.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json"
        self._env = env_with(container_env)
        self._cmd, self._cwd = root.command([
            chosen.python, str(WORKER_SCRIPT),
            "--model-dir", root.seen(model_dir), "--code-dir", root.seen(code_dir), "--program", program,
        ], code_dir)  # fmt: skip
        count = self.workers_default
        configured = env_model.get("SAGEMAKER_MODEL_SERVER_WORKERS")
        if configured and configured.strip().isdigit():
            count = max(1, int(configured))
        if self.serverless and self.serverless.get("MaxConcurrency"):
            count = max(1, min(count, int(self.serverless["MaxConcurrency"])))
        return count

    def _spawn(self) -> WorkerProcess:
        with self.lock:
            number = self._spawned
            self._spawned += 1
        log_path = self.sandbox / "logs" / f"worker-{number}.txt"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log_file:  # which Python serves, before the worker's own lines
            log_file.write(self._runtime_line + "\n")
        worker = WorkerProcess(self._cmd, self._env, self._cwd, log_path)
        if self.log_target is not None:
            group, stream, account_id, region = self.log_target
            shipping.follow(worker.log_path, group, stream, account_id=account_id, region=region)
            with self.lock:
                self._logs.append(worker.log_path)
        return worker

    def spawn(self, count: int) -> list[WorkerProcess]:
        started = [self._spawn() for _ in range(count)]
        with self.lock:
            self.workers.extend(started)
        return started

    def wait_ready(self, workers: list[WorkerProcess], deadline: float) -> str | None:
        """Wait for every worker's health; the first failure's reason, or None."""
        for worker in workers:
            error = worker.wait_ready(deadline)
            if error is not None:
                return f"{error}. Logs: {worker.log_path}"
        for worker in workers:
            self.idle.put(worker)
        return None

    # serving
    def acquire(self, timeout: float) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout
            try:
                return self.idle.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                with self.lock:
                    if not self.workers and not self.starting:
                        raise WorkerGone("no model server process is running") from None

    def release(self, worker: WorkerProcess) -> None:
        self.idle.put(worker)

    def discard(self, worker: WorkerProcess) -> None:
        """Kill a worker that died or timed out, and start a replacement in the background."""
        with self.lock:
            if worker in self.workers:
                self.workers.remove(worker)
            replace = not self.closing
            if replace:
                self.starting += 1
        threading.Thread(target=worker.stop, args=(0.5,), daemon=True).start()
        if replace:
            threading.Thread(target=self._replace, name=f"replace-{self.name}", daemon=True).start()

    def _replace(self) -> None:
        try:
            worker = self._spawn()
            error = worker.wait_ready(time.monotonic() + self.startup_timeout)
            with self.lock:
                keep = error is None and not self.closing
                if keep:
                    self.workers.append(worker)
            if keep:
                self.idle.put(worker)
            else:
                if error:
                    log.warning("replacement worker of variant %s failed: %s", self.name, error)
                worker.stop(0.5)
        finally:
            with self.lock:
                self.starting -= 1

    def stop(self, grace: float = 2.0) -> None:
        """Stop the workers and remove the extracted model (the logs stay)."""
        with self.lock:
            self.closing = True
            workers, self.workers = self.workers, []
        threads = [threading.Thread(target=w.stop, args=(grace,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=grace * 3 + 1)
        with self.lock:
            logs, self._logs = self._logs, []
        for path in logs:
            shipping.unfollow(path)
        shutil.rmtree(self.sandbox / "opt", ignore_errors=True)

    def pids(self) -> list[int]:
        with self.lock:
            return [w.pid for w in self.workers]

    def summary(self, now: Any) -> dict[str, Any]:
        """DescribeEndpoint's ProductionVariantSummary of this variant."""
        out: dict[str, Any] = {"VariantName": self.name}
        if self.image:
            out["DeployedImages"] = [
                {"SpecifiedImage": self.image, "ResolvedImage": self.image, "ResolutionTime": now}
            ]
        out.update(CurrentWeight=self.weight, DesiredWeight=self.weight)
        if self.instance_count is not None:
            out.update(CurrentInstanceCount=self.instance_count, DesiredInstanceCount=self.instance_count)
        if self.serverless:
            out.update(CurrentServerlessConfig=self.serverless, DesiredServerlessConfig=self.serverless)
        return out


# --- a fleet: the variants of one endpoint config ------------------------------------------------


class Fleet:
    """The variants of one endpoint config, started together and stopped together.

    The endpoint routes requests to a fleet and counts the requests in flight on it
    (``inflight``, guarded by the endpoint's lock) so that it is stopped only once drained.
    """

    def __init__(
        self,
        endpoint_name: str,
        config: dict[str, Any],
        root: Path,
        serial: int,
        workers_default: int,
        *,
        account_id: str | None = None,
        region: str | None = None,
    ) -> None:
        self.config_name: str = config["EndpointConfigName"]
        self.id = f"{self.config_name}-{serial}"
        self.dir = root / safe_name(endpoint_name) / safe_name(self.id)
        self.variants = [Variant(spec, self.dir, workers_default) for spec in config["ProductionVariants"]]
        for variant in self.variants:  # one "instance" a variant: its workers share a stream
            stream = f"{variant.name}/{shipping.instance_id(f'{endpoint_name}/{self.id}/{variant.name}')}"
            variant.log_target = (shipping.endpoint_group(endpoint_name), stream, account_id, region)
        self.by_name = {v.name: v for v in self.variants}
        self.capture = CaptureSettings.from_config(config.get("DataCaptureConfig"))
        self.capture_config = config.get("DataCaptureConfig") or None
        self.inflight = 0
        self.closing = False
        self._weights: tuple[list[float], float] = ([], 0.0)  # (cumulative weights, total): one attribute,
        self._reweigh()  # so a concurrent pick() never sees half of an update

    def _reweigh(self) -> None:
        cumulative, total = [], 0.0
        for variant in self.variants:
            total += max(0.0, variant.weight)
            cumulative.append(total)
        self._weights = (cumulative, total)

    def set_weights(self, weights: dict[str, float]) -> None:
        for name, weight in weights.items():
            if name in self.by_name and weight is not None:
                self.by_name[name].weight = float(weight)
        self._reweigh()

    def instance_total(self) -> int:
        return sum(int(v.instance_count or 1) for v in self.variants)

    def start(self) -> None:
        """Fetch every variant's model, start the workers, wait until all are healthy.

        Raises :class:`FleetError` (workers already started are stopped)."""
        fresh_dir(self.dir)
        counts = []
        try:
            for variant in self.variants:
                try:
                    counts.append(variant.prepare())
                except FleetError as error:
                    raise FleetError(f"production variant {variant.name}: {error.reason}") from None
            spawned = [variant.spawn(count) for variant, count in zip(self.variants, counts, strict=True)]
            for variant, workers in zip(self.variants, spawned, strict=True):
                unhealthy = variant.wait_ready(workers, time.monotonic() + variant.startup_timeout)
                if unhealthy is not None:
                    raise FleetError(
                        f"The primary container for production variant {variant.name} did not pass "
                        f"the ping health check: {truncate(unhealthy, 900)}"
                    )
        except BaseException:
            self.stop(grace=0.5)
            raise

    def pick(self, target: str | None = None) -> Variant | None:
        """The variant for a request: ``target`` if given (None if absent), else by weight."""
        if target:
            return self.by_name.get(target)
        variants = self.variants
        if len(variants) == 1:
            return variants[0]
        cumulative, total = self._weights
        if total <= 0:
            return random.choice(variants)  # noqa: S311
        index = bisect.bisect_right(cumulative, random.random() * total)  # noqa: S311
        return variants[min(index, len(variants) - 1)]

    def stop(self, grace: float = 2.0) -> None:
        self.closing = True
        for variant in self.variants:
            variant.stop(grace)

    def pids(self) -> list[int]:
        return [pid for v in self.variants for pid in v.pids()]

    def summaries(self, now: Any) -> list[dict[str, Any]]:
        return [v.summary(now) for v in self.variants]
