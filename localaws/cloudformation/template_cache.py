"""Parse each stack template body once: moto re-parses the same JSON on every boot.

moto gap (5.2.5): ``moto.cloudformation.models.Stack.parse_template`` reads every
``TemplateBody`` with PyYAML's pure-Python ``yaml.Loader`` (JSON is YAML), and
``CreateStack`` and ``UpdateStack`` parse it again each time. For this project's
translated template (about 180 kB of JSON) that is about a quarter of a second idle and
up to 2 s on a loaded machine, paid by every handler test and every local boot, for a
result that depends on the text alone.

Patched: ``Stack.parse_template`` (a staticmethod that ``Stack._parse_template`` and
``Stack.has_template`` call). The replacement calls moto's original once per distinct
body and hands out a copy of its result (a pickle round trip: moto's models keep and may
change the dict), so what moto sees is exactly what its own parser gives. A body that fails to
parse is not remembered: the original raises again, as before. ``ChangeSet`` keeps its
own parser; the stack boot does not use change sets.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from typing import Any

# One entry per distinct body: a few stack names and parameter sets per test process.
_MAX_ENTRIES = 16
_LOCK = threading.Lock()
_parsed: OrderedDict[str, bytes] = OrderedDict()
_original: Any = None


def _parse_template(template: str) -> Any:
    original = _original
    if not isinstance(template, str):
        return original(template)
    with _LOCK:
        found = _parsed.get(template)
        if found is not None:
            _parsed.move_to_end(template)
    if found is None:
        found = pickle.dumps(original(template))
        with _LOCK:
            _parsed[template] = found
            while len(_parsed) > _MAX_ENTRIES:
                _parsed.popitem(last=False)
    return pickle.loads(found)


def install() -> None:
    """Patch ``Stack.parse_template``. Idempotent."""
    global _original
    from moto.cloudformation.models import Stack

    if _original is None:
        _original = Stack.__dict__["parse_template"]
        Stack.parse_template = staticmethod(_parse_template)  # type: ignore[method-assign]


def uninstall() -> None:
    global _original
    from moto.cloudformation.models import Stack

    if _original is not None:
        Stack.parse_template = _original  # type: ignore[method-assign]
        _original = None
    with _LOCK:
        _parsed.clear()


def installed() -> bool:
    return _original is not None
