"""The local MLflow tracking server the demo and ``autoloop local serve`` log to.

A real ``mlflow server``: runs and metrics in SQLite (``<home>/mlflow/mlflow.db``), artifacts
served by the server itself from ``<home>/mlflow/artifacts/`` (``mlflow-artifacts:`` roots, which
Autoloop's REST client uploads to). The stack gets its URL as the template parameter
``MlflowTrackingUri``, so the Lambdas log to it exactly as they would to a server on AWS.

Browse the store with :func:`ui_command` (``autoloop ui``) after the demo has stopped its server.
The demo starts each time with a new store (``fresh``): its local AWS starts empty too, so runs
left from an earlier demo would point at S3 objects that no longer exist, and would share its
run ids (the monthly batch's, for one).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: Starting the server imports mlflow twice (the CLI, then its uvicorn worker) and migrates a new
#: database: 10 to 20 s on two busy cores. The wait ends as soon as /health answers.
START_TIMEOUT = 120.0


class MlflowServerError(Exception):
    """The server did not start: the message says why and where its log is."""


def store_dir(home: Path) -> Path:
    return home / "mlflow"


def backend_store_uri(home: Path) -> str:
    return f"sqlite:///{store_dir(home).resolve() / 'mlflow.db'}"


def ui_command(home: Path) -> str:
    """What browses the store once the demo is over (``autoloop ui`` runs it)."""
    artifacts = store_dir(home).resolve() / "artifacts"
    return (f"mlflow ui --backend-store-uri {shlex.quote(backend_store_uri(home))} "
            f"--artifacts-destination {shlex.quote(str(artifacts))}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """``mlflow server`` as a child process: :meth:`start` launches it without waiting, so it boots
    while the caller does other work; :meth:`wait` returns once its /health endpoint answers."""

    def __init__(self, home: Path, port: int = 0, fresh: bool = False) -> None:
        self.home, self.fresh = home, fresh
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = store_dir(home) / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's process id, also its process group's (None: not running)."""
        return self._process.pid if self._process else None

    @property
    def store_uri(self) -> str:
        return backend_store_uri(self.home)

    def start(self) -> MlflowServer:
        with socket.socket() as sock:  # else /health would be answered by whatever holds the port
            if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                raise MlflowServerError(f"port {self.port} is in use: stop what listens there, or pass another port "
                                        "(0 picks a free one).")
        folder = store_dir(self.home)
        if self.fresh:
            import shutil

            (folder / "mlflow.db").unlink(missing_ok=True)
            shutil.rmtree(folder / "artifacts", ignore_errors=True)
            if self._pristine.exists():  # a migrated empty store: saves the migrations (2 to 7 s)
                shutil.copyfile(self._pristine, folder / "mlflow.db")
        (folder / "artifacts").mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.store_uri,
                   "--artifacts-destination", str((folder / "artifacts").resolve()),
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        # No job runner: it starts seven huey consumers for MLflow's own server-side jobs (GenAI
        # evaluation, trace rollups), which tracking runs does not use.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("ab") as log:
            # Its own session: stop() ends the CLI and every process it starts, and nothing else.
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                             env=env)
        return self

    def wait(self, timeout: float = START_TIMEOUT) -> MlflowServer:
        """Return when the server answers /health; fail if it exits or does not answer in time."""
        if self._process is None:
            raise MlflowServerError("the MLflow server was not started.")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MlflowServerError(f"the MLflow server exited with code {self._process.returncode}; "
                                        f"see {self.log}:\n{self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        self._keep_pristine()
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)  # the next poll of the health endpoint
        raise MlflowServerError(f"the MLflow server did not answer {self.url}/health within {timeout:.0f} s; "
                                f"see {self.log}")

    @property
    def _pristine(self) -> Path:
        """Per MLflow version: a store migrated by another version's server would be refused."""
        from importlib import metadata

        return store_dir(self.home) / f"empty-{metadata.version('mlflow')}.db"

    def _keep_pristine(self) -> None:
        """A fresh store, just migrated (nothing logged yet), kept for the next fresh start."""
        if not self.fresh or self._pristine.exists():
            return
        import sqlite3

        source = sqlite3.connect(store_dir(self.home) / "mlflow.db")
        target = sqlite3.connect(self._pristine)
        try:
            source.backup(target)  # consistent while the server has it open
        finally:
            target.close()
            source.close()

    def _tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the session start() gave it: the CLI and its worker
        except ProcessLookupError:
            return  # the whole group is gone already
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group outlived the CLI (a worker that ignored SIGTERM)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout)

    def __enter__(self) -> MlflowServer:
        return self.start().wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()
