"""The one way the local AWS patches moto: save an original, set the replacement, put it back.

Each extension keeps one :class:`Patches` and installs through it::

    PATCHES = Patches("my_extension")

    def install() -> None:
        PATCHES.apply(_patch)  # runs _patch once; later calls do nothing

    def _patch(patches: Patches) -> None:
        from moto.service.models import SomeBackend

        patches.set(SomeBackend, "some_method", _replacement)

    uninstall = PATCHES.restore
    installed = PATCHES.active

A replacement reaches what it replaced with ``PATCHES.original(SomeBackend, "some_method")``
(still answered after :meth:`Patches.restore`, for work that outlives the patch, such as a
queued delivery).

:meth:`Patches.restore` puts back every original in reverse order and deletes an attribute
the owner did not have itself before (a method moto lacks, or one the class inherited).
Two extensions may patch one attribute (the endpoints' server fast path and the fault
injector both wrap ``DomainDispatcherApplication.__call__``). Restoring the upper one puts
back the lower one's replacement; restoring the lower one first leaves the upper one in
place and hands it the lower one's original, which it reaches when it calls through
:meth:`Patches.original` (or :meth:`Patches.calls_original`) at call time rather than a
function captured at install. An attribute that code outside this module set over a patch
is left as it is; :meth:`Patches.active` is then false, so the next :meth:`Patches.apply`
patches again (over what it finds).

Thread-safe: one lock for every extension, since patches can stack on one attribute.
:func:`locked` is the one wrapper several extensions need: moto's method, run holding the
extension's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

_LOCK = threading.RLock()
_MISSING: Any = object()
# every patch in place, per attribute (id of the owner, name), oldest first
_LIVE: dict[tuple[int, str], list[_Patch]] = {}


@dataclass(eq=False)
class _Patch:
    owner: Any
    name: str
    value: Any
    before: Any  # the owner's own attribute before (its __dict__ entry), or _MISSING
    original: Any  # what ``getattr(owner, name)`` gave before (inherited ones too), or _MISSING


def _own(owner: Any, name: str) -> Any:
    return vars(owner).get(name, _MISSING)


def _key(owner: Any, name: str) -> tuple[int, str]:
    return id(owner), name


def _in_place(patch: _Patch) -> bool:
    """The attribute holds the patch's value, or a stack of :class:`Patches` over it."""
    live = _LIVE.get(_key(patch.owner, patch.name), [])
    current = _own(patch.owner, patch.name)
    for _ in range(len(live)):
        if current is patch.value:
            return True
        above = next((p for p in live if p.value is current), None)
        if above is None:
            return False
        current = above.before
    return current is patch.value


def _undo(patch: _Patch) -> None:
    key = _key(patch.owner, patch.name)
    live = _LIVE.get(key, [])
    if patch in live:
        live.remove(patch)
    if not live:
        _LIVE.pop(key, None)
    if _own(patch.owner, patch.name) is patch.value:
        if patch.before is _MISSING:
            delattr(patch.owner, patch.name)
        else:
            setattr(patch.owner, patch.name, patch.before)
        return
    above = next((p for p in live if p.before is patch.value), None)
    if above is not None:  # another extension's patch sits on ours: it now covers our original
        above.before, above.original = patch.before, patch.original
    # else: code outside this module replaced ours; leave what it set


class Patches:
    """The patches of one extension (``name``, for messages)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._patches: list[_Patch] = []
        self._known: dict[tuple[int, str], _Patch] = {}  # kept after restore, for original()

    def __repr__(self) -> str:
        return f"Patches({self.name!r}, {len(self._patches)} in place)"

    def active(self) -> bool:
        """Whether the patches are set and still in place."""
        with _LOCK:
            return bool(self._patches) and all(_in_place(p) for p in self._patches)

    @property
    def targets(self) -> list[tuple[Any, str]]:
        """``(owner, attribute)`` of every patch in place, in the order they were set."""
        with _LOCK:
            return [(p.owner, p.name) for p in self._patches]

    def apply(self, setup: Callable[[Patches], object]) -> bool:
        """Run ``setup(self)`` (which calls :meth:`set`) unless the patches are active.

        Idempotent: returns False when nothing was done. If ``setup`` raises, what it set
        is restored. Patches that someone else undid are dropped and set again."""
        with _LOCK:
            if self.active():
                return False
            self.restore()
            try:
                setup(self)
            except BaseException:
                self.restore()
                raise
            return True

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """Save ``owner.name`` (a class or a module attribute; it may be missing) and set
        ``value``. Returns the original (None when there was none)."""
        with _LOCK:
            if any(p.owner is owner and p.name == name for p in self._patches):
                raise ValueError(f"{self.name} already patches {owner!r}.{name}")
            patch = _Patch(owner, name, value, _own(owner, name), getattr(owner, name, _MISSING))
            setattr(owner, name, value)
            self._patches.append(patch)
            self._known[_key(owner, name)] = patch
            _LIVE.setdefault(_key(owner, name), []).append(patch)
            return None if patch.original is _MISSING else patch.original

    def original(self, owner: Any, name: str) -> Any:
        """What ``owner.name`` was before this extension set it (or, if another extension's
        patch beneath was restored since, what was beneath that). Raises AttributeError if
        there was nothing, KeyError if this extension never patched it."""
        patch = self._known.get(_key(owner, name))
        if patch is None:
            raise KeyError(f"{self.name} never patched {owner!r}.{name}")
        found = patch.original
        if found is _MISSING:
            raise AttributeError(f"{owner!r} had no attribute {name!r} before {self.name} patched it")
        return found

    def calls_original(self, owner: Any, name: str) -> Callable[..., Any]:
        """A function that calls :meth:`original` as it is at call time (for a wrapper built
        before :meth:`set`, on an attribute another extension may patch too)."""

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.original(owner, name)(*args, **kwargs)

        return call

    def restore(self) -> bool:
        """Put back every original, last set first (idempotent). Returns whether any was set."""
        with _LOCK:
            patches, self._patches = self._patches, []
            for patch in reversed(patches):
                _undo(patch)
            return bool(patches)


def locked(original: Callable[..., Any], lock: AbstractContextManager[Any]) -> Callable[..., Any]:
    """``original`` (a moto method) run holding ``lock``, for an extension whose own threads
    change the objects that method reads."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    call.__wrapped__ = original  # type: ignore[attr-defined]
    return call
