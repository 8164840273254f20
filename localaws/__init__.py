"""The local AWS: moto plus the extensions Autoloop needs, grouped by the service they emulate.

Each sub-package fills gaps of moto (pinned in pyproject.toml) for one AWS service, and each
extension's docstring names the moto symbols it patches. :mod:`localaws.extensions` is the
one list of extensions (the server and the tests both use it); :mod:`localaws.patching` is
the one way they patch moto. :mod:`localaws.server` starts it all, in-process or as a server.

This package imports the domain package (``autoloop``) at most, never the command line
(``autoloop_cli``) or the benchmarks: see docs/ARCHITECTURE.md, "Import directions".
"""

from __future__ import annotations

import os
from pathlib import Path

#: where local state goes: extracted Lambda code, function logs, job and endpoint sandboxes
HOME_ENV = "AUTOLOOP_LOCAL_HOME"


def local_home() -> Path:
    """``$AUTOLOOP_LOCAL_HOME``, else ``.autoloop`` in the working directory."""
    return Path(os.environ.get(HOME_ENV) or ".autoloop").resolve()
