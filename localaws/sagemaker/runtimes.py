"""The Python a local job runs on: the project's venv, or a venv built like the job's image.

On SageMaker a job runs in its image: ``sagemaker-scikit-learn:1.2-1`` is Python 3.9 with
scikit-learn 1.2.1 and pandas 1.1.3, whatever the laptop has. Local mode has no containers, so a
script that passes locally on the project's venv (Python 3.12, scikit-learn 1.9, pandas 3) proves
little about the image. For the prebuilt framework images listed in :data:`IMAGE_RUNTIMES`, a
local job can instead run on a **local runtime**: a virtual environment with the image's Python
minor version and its pinned packages, plus the model's ``requirements.txt`` where the platform
installs one (training jobs, from the source directory). It is built once, on first use, into
``$AUTOLOOP_RUNTIME_CACHE`` (default ``~/.cache/autoloop/runtimes``), one folder per image,
version and requirements digest. Building needs the package registry and the image's Python
(pyenv's, or ``pythonX.Y`` on ``PATH``); running needs neither.

``AUTOLOOP_LOCAL_RUNTIME`` chooses, per process that runs the jobs:

* ``image``: jobs in a listed image run on its runtime, built if missing (with progress on
  stderr); a runtime that cannot be built fails the job with the reason.
* ``auto`` (the default): the image's runtime if it is already built, else the project's venv.
* ``project``: always the project's venv (the tests' default: fast and deterministic).

Jobs in other images (your own container, the Model Monitor analyzer) run on the project's
venv. Every job's log starts with one line saying which Python ran it and how that differs from
the image, so a local pass on the project's venv is never mistaken for a pass in the image.

Where a runtime still differs from the image: the packages are the image's pins, installed from
wheels, not the image's conda build; the Python patch version is whatever is installed here
(3.9.18, not the image's 3.9.x); the operating system is this machine's; and the image's other
packages (its serving stack, MLIO, boto3) are not there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

MODE_VAR = "AUTOLOOP_LOCAL_RUNTIME"
CACHE_VAR = "AUTOLOOP_RUNTIME_CACHE"
MODES = ("auto", "image", "project")
#: The packages a job's log line reports the versions of, when installed.
SHOWN = ("scikit-learn", "xgboost", "torch", "pandas", "numpy")
READY = "runtime.json"
#: Starts the one line each job log (and endpoint worker log) opens with.
PREFIX = "[local runtime] "


class RuntimeUnavailable(Exception):
    """A local runtime that ``image`` mode needs cannot be built; the message says why and what to
    do, ``log`` is the build's log (None when no build started)."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class ImageRuntime:
    """What a prebuilt framework image runs its scripts on, as far as a venv can reproduce it."""

    repository: str  # the ECR repository, e.g. sagemaker-scikit-learn
    version: str  # the framework version of the image tag, e.g. 1.2-1
    python: str  # the image's Python, major.minor
    packages: tuple[str, ...]  # pins, as pip requirements

    @property
    def image(self) -> str:
        return f"{self.repository}:{self.version}"


#: The images a local runtime exists for. Pins are the ones the images' Dockerfiles and
#: requirements files name; they are not read off a pulled image (no Docker or AWS here).
IMAGE_RUNTIMES: tuple[ImageRuntime, ...] = (
    # aws/sagemaker-scikit-learn-container docker/1.2-1 (Python 3.9, scikit-learn==1.2.1) and its
    # requirements at that version
    ImageRuntime("sagemaker-scikit-learn", "1.2-1", "3.9",
                 ("scikit-learn==1.2.1", "pandas==1.1.3", "numpy==1.24.1", "scipy==1.8.0")),
    # aws/sagemaker-xgboost-container docker/1.7-1 (Python 3.8, xgboost==1.7.4) and its requirements
    # at that version
    ImageRuntime("sagemaker-xgboost", "1.7-1", "3.8",
                 ("xgboost==1.7.4", "pandas==1.2.4", "numpy==1.19.2", "scikit-learn==0.24.1", "scipy==1.6.2")),
)


def image_repository(image_uri: str | None) -> str:
    """The repository of an image URI: ``acct.dkr.ecr.region.amazonaws.com/repo:tag`` -> ``repo``."""
    text = (image_uri or "").strip()
    text = text.split("@", 1)[0]
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        text = rest  # drop the registry host
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text = text[:colon]  # drop the tag
    return text


def image_runtime(image_uri: str | None) -> ImageRuntime | None:
    """The runtime of an image URI (``...amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3``), if listed."""
    repository = image_repository(image_uri)
    tag = (image_uri or "").split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    for runtime in IMAGE_RUNTIMES:
        if runtime.repository == repository and (tag == runtime.version or tag.startswith(runtime.version + "-")):
            return runtime
    return None


def mode() -> str:
    value = os.environ.get(MODE_VAR, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise RuntimeUnavailable(f"{MODE_VAR}={value!r} is not one of {', '.join(MODES)}")
    return value


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_VAR)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autoloop" / "runtimes"


@dataclass(frozen=True)
class Interpreter:
    """The Python a job runs on, and the one line its log starts with."""

    python: str
    line: str
    runtime: ImageRuntime | None = None  # set when it is the image's runtime


def _versions(python_version: str, packages: dict[str, str]) -> str:
    shown = [f"{name} {packages[name]}" for name in SHOWN if name in packages]
    return ", ".join([f"Python {python_version}", *shown])


def _project_line(runtime: ImageRuntime | None, why: str) -> str:
    installed = {}
    for name in SHOWN:
        try:
            installed[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    here = _versions(".".join(map(str, sys.version_info[:3])), installed)
    if runtime is None:
        return f"{PREFIX}the project's venv ({here}): {why}"
    return (f"{PREFIX}the project's venv ({here}), NOT {runtime.image}'s Python {runtime.python} with "
            f"{', '.join(runtime.packages)}: {why}")


def _key(runtime: ImageRuntime, requirements: str | None) -> str:
    digest = hashlib.sha256("\n".join([runtime.python, *runtime.packages, requirements or ""]).encode()).hexdigest()
    return f"{runtime.repository}-{runtime.version}-{digest[:12]}"


def _requirements_text(requirements: Path | None) -> str | None:
    if requirements is None or not requirements.is_file():
        return None
    return requirements.read_text()


def _ready(folder: Path) -> dict[str, object] | None:
    try:
        return json.loads((folder / READY).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def built(runtime: ImageRuntime, requirements: Path | None = None) -> Path | None:
    """The runtime's venv folder if it is built, else None."""
    folder = cache_dir() / _key(runtime, _requirements_text(requirements))
    return folder if _ready(folder) else None


def find_python(version: str) -> str | None:
    """An installed Python ``version`` (major.minor): pyenv's newest patch, else ``pythonX.Y`` on PATH."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = []
    for candidate in root.glob(f"{version}.*/bin/python{version}"):
        patch = candidate.parent.parent.name.split(".")[2]
        if patch.isdigit():
            found.append((int(patch), candidate))
    if found:
        return str(max(found)[1])
    return shutil.which(f"python{version}")


def build(runtime: ImageRuntime, requirements: Path | None = None, *,
          progress: Callable[[str], None] | None = None) -> Path:
    """The runtime's venv folder, built now unless it already is (one build at a time per folder)."""
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))
    text = _requirements_text(requirements)
    folder = cache_dir() / _key(runtime, text)
    if _ready(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait for it
        if _ready(folder):
            return folder
        python = find_python(runtime.python)
        if python is None:
            raise RuntimeUnavailable(
                f"{runtime.image} runs Python {runtime.python}, which is not installed here: install it "
                f"(`pyenv install {runtime.python}`) or set {MODE_VAR}=project to run on the project's venv")
        shutil.rmtree(folder, ignore_errors=True)  # a build that died half way
        log = folder.parent / f"{folder.name}.log"
        extra = f" and {requirements}" if text is not None else ""
        say(f"building the local runtime of {runtime.image} (Python {runtime.python}, "
            f"{' '.join(runtime.packages)}{extra}) into {folder}; once, about a minute; log: {log}")
        began = time.monotonic()
        venv_python = folder / "bin" / "python"
        pip = [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        # the image's packages first, then the job's requirements over them (which may say --no-index),
        # as the framework container installs requirements.txt into the image's environment
        steps = [[python, "-m", "venv", str(folder)], [*pip, *runtime.packages],
                 *([[*pip, "-r", str(requirements)]] if text is not None else [])]
        req_dir = str(requirements.parent) if text is not None and requirements is not None else None
        with log.open("w") as out:
            for step in steps:
                out.write(f"$ {' '.join(step)}\n")
                out.flush()
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False, cwd=req_dir)  # noqa: S603
                if done.returncode != 0:
                    shutil.rmtree(folder, ignore_errors=True)
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                    raise RuntimeUnavailable(
                        f"could not build the local runtime of {runtime.image} ({tail[0] if tail else 'no output'}): "
                        f"its first build needs the package registry; --runtime project ({MODE_VAR}=project) runs "
                        f"on the project's venv instead", log)
        frozen = subprocess.run([str(venv_python), "-c", _REPORT], capture_output=True, text=True,  # noqa: S603
                                check=True).stdout
        (folder / READY).write_text(frozen)
        say(f"built the local runtime of {runtime.image} in {time.monotonic() - began:.0f} s")
        return folder


# Run by the runtime's own Python: its version and installed distributions.
_REPORT = (
    "import json, platform\n"
    "from importlib import metadata\n"
    "print(json.dumps({'python': platform.python_version(), 'packages': "
    "{d.metadata['Name'].lower(): d.version for d in metadata.distributions()}}, sort_keys=True))\n"
)


def lines(log: str) -> list[str]:
    """The runtime lines of a job or worker log, without their prefix."""
    return [line[len(PREFIX):] for line in log.splitlines() if line.startswith(PREFIX)]


def interpreter(image_uri: str | None, requirements: Path | None = None) -> Interpreter:
    """The Python a job in ``image_uri`` runs on under the current :func:`mode`.

    ``requirements`` is the job's ``requirements.txt`` (training: the source directory's), part of
    the runtime's identity. Raises :class:`RuntimeUnavailable` only in ``image`` mode."""
    chosen = mode()
    runtime = image_runtime(image_uri)
    if chosen == "project":
        return Interpreter(sys.executable, _project_line(runtime, f"{MODE_VAR}=project"))
    if runtime is None:
        listed = ", ".join(r.image for r in IMAGE_RUNTIMES)
        why = f"no local runtime exists for this image (listed: {listed})"
        return Interpreter(sys.executable, _project_line(None, why))
    folder = built(runtime, requirements)
    if folder is None and chosen == "auto":
        return Interpreter(sys.executable, _project_line(
            runtime, f"its local runtime is not built; `autoloop local runtimes --build` or {MODE_VAR}=image "
                     "builds it"))
    folder = folder or build(runtime, requirements)
    report = _ready(folder) or {}
    packages = {str(k): str(v) for k, v in dict(report.get("packages") or {}).items()}  # type: ignore[call-overload]
    what = _versions(str(report.get("python", runtime.python)), packages)
    extra = " and the job's requirements.txt" if _requirements_text(requirements) is not None else ""
    return Interpreter(str(folder / "bin" / "python"),
                       f"{PREFIX}{runtime.image}'s local runtime ({what}{extra}): {folder}", runtime)
