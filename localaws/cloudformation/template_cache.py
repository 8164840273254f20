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
from collections.abc import Callable, Hashable
from typing import Any

from localaws.patching import Patches

PATCHES = Patches("cfn_template_cache")


class CopyMemo:
    """Results of a pure function by key, handed out as fresh copies (a pickle round trip),
    so a caller that changes what it got cannot change what the next caller gets. Keeps the
    ``size`` most recently used entries: a few templates and parameter sets per process."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        if found is None:
            found = pickle.dumps(compute())  # outside the lock; an exception is not remembered
            with self._lock:
                self._entries[key] = found
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return pickle.loads(found)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_parsed = CopyMemo()


def _parse_template(template: str) -> Any:
    from moto.cloudformation.models import Stack

    original = PATCHES.original(Stack, "parse_template")
    if not isinstance(template, str):
        return original(template)
    return _parsed.get(template, lambda: original(template))


def _patch(patches: Patches) -> None:
    from moto.cloudformation.models import Stack

    patches.set(Stack, "parse_template", staticmethod(_parse_template))


def install() -> None:
    """Patch ``Stack.parse_template``. Idempotent."""
    PATCHES.apply(_patch)


def uninstall() -> None:
    PATCHES.restore()
    _parsed.clear()


installed = PATCHES.active
