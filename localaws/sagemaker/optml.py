"""The container's ``/opt/ml`` for local jobs and model-server workers.

Gap in moto: there is no container, so there is no ``/opt/ml``. Scripts that take their
paths from arguments and ``SM_*`` variables work in a sandbox folder whatever it is called,
but many do not: AWS's processing examples glob ``/opt/ml/processing/input/...``, and the
SageMaker SDK v3's ``ModelTrainer`` drivers (``sm_drivers/*.sh``) hard-code ``/opt/ml/...``
inside ``bash -c`` strings and files. So, where Linux allows it, each job process and
each endpoint worker runs with a real ``/opt/ml``:

- **private** (the default where it works): the process starts in a new mount namespace
  (util-linux's ``unshare -m``; as a non-root user ``unshare -U -r -m``, which needs
  unprivileged user namespaces; no Docker, no bubblewrap). Inside it, before the command
  runs, a tmpfs covers ``/opt``, every entry of the host's ``/opt`` is bound back in
  (interpreters, pip indexes or tools installed there stay visible; a host ``/opt/ml``
  is hidden), and the sandbox's ``opt/ml`` is bound at ``/opt/ml``. The job sees the
  container paths, hard-coded or not, and nothing it writes there reaches the host's
  ``/opt``. The mounts are the namespace's own (private propagation) and vanish with its
  last process. The process keeps its PID, process group and environment (``unshare``
  and the setup shell ``exec`` into the command), so ``kill_process_group`` and the logs
  work as before. Cost: about 40 ms per process start.
- **rewrite** (the fallback, with a one-line warning once per process): a leading
  ``/opt/ml`` in arguments and environment values becomes ``<sandbox>/opt/ml``. Paths
  hard-coded inside a script cannot be rewritten, so such a script would read nothing
  and write to the host: after each processing, training or transform job, anything the
  job created or changed under the host's ``/opt/ml`` fails the job with a reason naming
  the path, and what it created is removed (so the next job cannot read it).

Whether namespaces work is probed once per process (the real setup, on a scratch
sandbox) and cached. ``AUTOLOOP_OPT_ML`` chooses: ``auto`` (default: private where the
probe passes, else rewrite), ``namespace`` (jobs fail when the probe does not pass) or
``rewrite``. The setup needs ``/opt`` to exist on the host; a host without it gets the
fallback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localaws.sagemaker.sandbox import CONTAINER_ROOT, JobFailure, rewrite

log = logging.getLogger(__name__)

MODE_ENV = "AUTOLOOP_OPT_ML"
MODES = ("auto", "namespace", "rewrite")
HOST_WATCH_LIMIT = 20000  # entries of the host's /opt/ml looked at before and after a job

# $1 = the sandbox (holds opt/ml), $2 = the working directory as the process sees it,
# then the command. Runs in bash (which, unlike dash, passes on environment variables whose
# names are not shell identifiers) as root of its own mount namespace; `set -e` stops at
# the first failed mount, before the command runs.
SETUP = r"""set -eu
sandbox=$1; workdir=$2; shift 2
host=$sandbox/.host-opt
mkdir -p "$host"
mount --rbind /opt "$host"
mount -t tmpfs -o mode=0755 autoloop-opt /opt
for entry in "$host"/* "$host"/.[!.]* "$host"/..?*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  name=${entry##*/}
  [ "$name" = ml ] && continue
  if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "/opt/$name"
  elif [ -d "$entry" ]; then mkdir "/opt/$name"; mount --rbind "$entry" "/opt/$name"
  else : > "/opt/$name"; mount --bind "$entry" "/opt/$name"; fi
done
umount -l "$host"
mkdir /opt/ml
mount --bind "$sandbox/opt/ml" /opt/ml
cd "$workdir"
exec "$@"
"""


@dataclass(frozen=True)
class Support:
    """Whether this host can give a process a private ``/opt/ml`` (``reason`` if not)."""

    available: bool
    reason: str = ""
    launcher: tuple[str, ...] = ()


_PROBE_LOCK = threading.Lock()
_SUPPORT: Support | None = None
_WARNED = False


def _launcher(unshare: str, bash: str) -> tuple[str, ...]:
    flags = ("-m",) if os.geteuid() == 0 else ("-U", "-r", "-m")
    return (unshare, *flags, "--propagation", "private", bash, "-c", SETUP, "autoloop-opt-ml")


def probe() -> Support:
    """Run the real setup once on a scratch sandbox (uncached; see :func:`support`)."""
    if not sys.platform.startswith("linux"):
        return Support(False, f"mount namespaces are Linux only (this is {sys.platform})")
    unshare = shutil.which("unshare")
    if unshare is None:
        return Support(False, "util-linux's unshare is not installed")
    bash = shutil.which("bash")  # not sh: dash drops variables such as SM_HP_MAX-ITER
    if bash is None:
        return Support(False, "bash is not installed")
    if not os.path.isdir("/opt"):
        return Support(False, "/opt does not exist on this host")
    launcher = _launcher(unshare, bash)
    with tempfile.TemporaryDirectory(prefix="autoloop-optml-") as scratch:
        (Path(scratch) / "opt" / "ml").mkdir(parents=True)
        (Path(scratch) / "opt" / "ml" / "probe").write_text("ok")
        try:
            done = subprocess.run(  # noqa: S603 - fixed command
                [*launcher, scratch, "/", "test", "-f", f"{CONTAINER_ROOT}/probe"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Support(False, f"unshare could not run: {exc}")
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return Support(False, f"unshare failed: {lines[-1] if lines else f'exit code {done.returncode}'}")
    return Support(True, launcher=launcher)


def support() -> Support:
    """:func:`probe`, once per process."""
    global _SUPPORT  # noqa: PLW0603 - the cached probe
    with _PROBE_LOCK:
        if _SUPPORT is None:
            _SUPPORT = probe()
        return _SUPPORT


def forget_probe() -> None:
    """Probe again on next use (tests)."""
    global _SUPPORT, _WARNED  # noqa: PLW0603
    with _PROBE_LOCK:
        _SUPPORT = None
        _WARNED = False


def mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise JobFailure(
            f"ClientError: {MODE_ENV}={os.environ.get(MODE_ENV)!r} is not one of "
            f"{', '.join(MODES)}; unset it to get a private /opt/ml where possible"
        )
    return value


@dataclass(frozen=True)
class Root:
    """How the processes of one sandbox see ``/opt/ml``."""

    sandbox: Path
    private: bool
    why_not: str = ""  # why the fallback, when not private
    launcher: tuple[str, ...] = ()

    @property
    def host_opt(self) -> Path:
        """The sandbox folder that is (or stands for) the container's ``/opt/ml``."""
        return self.sandbox / "opt" / "ml"

    def seen(self, host_path: Path | str) -> str:
        """The path the process is told for ``host_path``: ``/opt/ml/...`` for a path in the
        sandbox's ``opt/ml`` when private, else the host path itself."""
        path = Path(host_path)
        if not self.private:
            return str(path)
        try:
            rel = path.relative_to(self.host_opt).as_posix()
        except ValueError:
            return str(path)
        return CONTAINER_ROOT if rel == "." else f"{CONTAINER_ROOT}/{rel}"

    def rewrite(self, value: str) -> str:
        """An argument or environment value as the process gets it: unchanged when private,
        else with a leading ``/opt/ml`` pointing into the sandbox."""
        return value if self.private else rewrite(value, self.sandbox)

    def command(self, cmd: Sequence[str], cwd: Path) -> tuple[list[str], Path]:
        """(argv, cwd) to start ``cmd`` in ``cwd`` (a host path): inside the namespace
        (which changes to the container path of ``cwd``), or as it is."""
        if not self.private:
            return list(cmd), cwd
        return [*self.launcher, str(self.sandbox), self.seen(cwd), *cmd], self.sandbox

    # --- the fallback's check -----------------------------------------------------------

    def watch(self) -> dict[str, int] | None:
        """A snapshot of the host's ``/opt/ml`` before a job (None when private)."""
        return None if self.private else _host_tree()

    def check(self, before: dict[str, int] | None) -> None:
        """Fail the job if it created or changed anything under the host's ``/opt/ml``
        since :meth:`watch`; remove what it created."""
        if self.private or before is None:
            return
        after = _host_tree()
        created = sorted(set(after) - set(before))
        changed = sorted(p for p in set(after) & set(before) if after[p] != before[p] and p != CONTAINER_ROOT)
        if not created and not changed:
            return
        for path in sorted(created, key=len, reverse=True):  # deepest first
            target = Path(path)
            try:
                if target.is_dir() and not target.is_symlink():
                    target.rmdir()
                else:
                    target.unlink()
            except OSError:
                pass
        first = (created or changed)[0]
        raise JobFailure(
            f"ClientError: the job wrote to {first} on this host ({len(created)} created, "
            f"{len(changed)} changed under {CONTAINER_ROOT}; what it created was removed). "
            f"Local mode could not give it a private {CONTAINER_ROOT} ({self.why_not}) and only "
            f"rewrites a leading {CONTAINER_ROOT} in arguments and environment values. Take "
            "paths from the arguments or SM_* variables, or run local mode on Linux with "
            "unshare and mount namespaces allowed"
        )


_EMPTY: dict[str, int] = {}


def _host_tree(base: str = CONTAINER_ROOT) -> dict[str, int]:
    """path -> mtime (ns) of the host's ``/opt/ml`` and what is under it (bounded)."""
    try:
        tree = {base: os.lstat(base).st_mtime_ns}
    except OSError:
        return dict(_EMPTY)
    for folder, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(folder, name)
            try:
                tree[path] = os.lstat(path).st_mtime_ns
            except OSError:
                continue
            if len(tree) >= HOST_WATCH_LIMIT:
                return tree
    return tree


def root_for(sandbox: Path) -> Root:
    """The ``/opt/ml`` of ``sandbox``'s processes, by :data:`MODE_ENV` and the probe.
    Raises :class:`JobFailure` for a bad mode, or ``namespace`` where it cannot work."""
    global _WARNED  # noqa: PLW0603 - warn once
    chosen = mode()
    if chosen == "rewrite":
        return Root(sandbox, False, f"{MODE_ENV}=rewrite")
    found = support()
    if found.available:
        return Root(sandbox, True, launcher=found.launcher)
    if chosen == "namespace":
        raise JobFailure(
            f"ClientError: {MODE_ENV}=namespace, but this host cannot give jobs a private "
            f"{CONTAINER_ROOT}: {found.reason}"
        )
    with _PROBE_LOCK:
        if not _WARNED:
            _WARNED = True
            log.warning(
                "local SageMaker: no private %s for jobs and endpoints (%s); only a leading %s "
                "in arguments and environment values is rewritten, and a job that writes to "
                "the host's %s fails", CONTAINER_ROOT, found.reason, CONTAINER_ROOT, CONTAINER_ROOT,
            )  # fmt: skip
    return Root(sandbox, False, found.reason)


# --- the interpreter and pip as the container's PATH has them -----------------------------

_PYTHON_SHIM = '#!/bin/sh\nexec "{python}" "$@"\n'
_PIP_SHIM = """#!/bin/sh
if [ "${{1:-}}" = install ]; then
  echo "local mode does not install packages into the local AWS's interpreter ({python});" \\
       "install what the job needs into it yourself (requirements.txt is not installed)" >&2
  exit 1
fi
exec "{python}" -m pip "$@"
"""


def tool_dir(base: Path, python: str | None = None) -> Path:
    """``<base>/bin`` with ``python``/``python3`` (``python``, by default this interpreter: the
    one that runs the job's ``python`` commands) and ``pip``/``pip3`` (that refuse
    ``install``): the front of a job's ``PATH``, so shell drivers that call ``python3`` from
    ``PATH`` (SDK v3's ``sm_train.sh``) get an interpreter with the job's packages. Another
    interpreter (a local runtime) gets a folder of its own, ``<base>/bin-<digest>``."""
    python = python or sys.executable
    name = "bin" if python == sys.executable else "bin-" + hashlib.sha256(python.encode()).hexdigest()[:12]
    folder = base / name
    wanted = {
        "python": _PYTHON_SHIM.format(python=python),
        "pip": _PIP_SHIM.format(python=python),
    }
    wanted["python3"], wanted["pip3"] = wanted["python"], wanted["pip"]
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        path = folder / name
        try:
            current = path.read_text()
        except OSError:
            current = None
        if current != text:
            scratch = folder / f".{name}.{os.getpid()}.{threading.get_ident()}"
            scratch.write_text(text)
            scratch.chmod(0o755)
            os.replace(scratch, path)
    return folder


def path_with_tools(base: Path, python: str | None = None) -> str:
    """``PATH`` for a job: :func:`tool_dir` first, then this process's ``PATH``."""
    rest = os.environ.get("PATH") or os.defpath
    return os.pathsep.join((str(tool_dir(base, python)), rest))
