"""Helpers shared by the ml/ job scripts: failure reporting, argument parsing, logging, inputs.

Used by preprocess.py, train.py, evaluate.py, batch_prepare.py, calibrate.py and monitor.py; not by
inference.py, which train.py copies alone into ``model.tar.gz:code/``. Runs on Python 3.9
(SageMaker's scikit-learn 1.2-1 containers) and imports the standard library only, so
batch_prepare.py stays free of pandas.

Shipped beside the scripts (``publish`` uploads every ``ml/*.py`` to ``code/ml/`` and into
``sourcedir.tar.gz``). A script run as ``python3 <folder>/<script>.py``, as processing jobs
and the training toolkit run them, has its own folder first on ``sys.path``, so
``import autoloop_ml_common`` finds this file there. The name is chosen not to clash with a
standard library or PyPI module.

The failure contract of every job script: an expected failure raises :class:`ScriptError`
(argument errors included); :func:`run` turns it, or any crash, into a one-line reason in
``$SM_OUTPUT_DIR/failure`` (default ``/opt/ml/output/failure``) and on stderr, and exit code 1.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import traceback


class ScriptError(Exception):
    """An expected failure; the message is the one-line reason."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # type: ignore[override]
        raise ScriptError(f"invalid arguments: {message}")


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, without abbreviated options, whose
    usage errors raise :class:`ScriptError` ("invalid arguments: ...")."""
    return _Parser(description=doc.splitlines()[0], allow_abbrev=False)


def fail(reason: str) -> None:
    """Write the one-line reason to $SM_OUTPUT_DIR/failure, print it, exit 1."""
    reason = " ".join(str(reason).split())[:1000] or "unknown error"
    out_dir = os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "failure"), "w", encoding="utf-8") as fh:
            fh.write(reason)
    except OSError as exc:
        print(f"could not write the failure file in {out_dir}: {exc}", file=sys.stderr)
    print(f"FAILED: {reason}", file=sys.stderr)
    sys.exit(1)


def _crash_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run(main, crash_reason=_crash_reason) -> None:
    """Call ``main()``; a ScriptError fails with its message, any other exception prints its
    traceback and fails with ``crash_reason(exc)`` (default ``"<Type>: <message>"``)."""
    try:
        main()
    except ScriptError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - any crash must leave a reason behind
        traceback.print_exc()
        fail(crash_reason(exc))


def logger(name: str):
    """A ``log(message)`` that prints ``[name] message`` to stdout, flushed."""

    def log(message: str) -> None:
        print(f"[{name}] {message}", flush=True)

    return log


def csv_files(folder: str) -> list:
    """Every ``*.csv`` below ``folder`` (recursively), sorted by path."""
    return sorted(glob.glob(os.path.join(folder, "**", "*.csv"), recursive=True))


def read_config(path: str):
    """The JSON document in the model config file ``path``; a missing or unreadable file, or
    invalid JSON, raises ScriptError."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ScriptError(f"config file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ScriptError(f"cannot read config {path}: {exc}") from None


def class_text(value) -> str:
    """A class label's canonical text: "1.0" and "1" are the same class (as autoloop.config
    reads ``classes`` and ValidateInput reads labels)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text
