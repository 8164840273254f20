"""localaws.patching (the one patch helper) and localaws.extensions (the one registry)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from localaws import extensions, faults
from localaws.patching import Patches, locked


class Base:
    def inherited(self) -> str:
        return "base"


class Target(Base):
    value = 1

    def method(self) -> str:
        return "original"


def test_set_and_restore_puts_back_originals_and_deletes_added_attributes():
    module = types.ModuleType("fake_module")
    module.function = lambda: "module original"  # type: ignore[attr-defined]
    patches = Patches("test")
    method, inherited, function = Target.__dict__["method"], Base.inherited, module.function

    def setup(p: Patches) -> None:
        assert p.set(Target, "method", lambda self: "patched") is method
        assert p.set(Target, "inherited", lambda self: "patched") is inherited  # Base's, not Target's own
        assert p.set(Target, "added", "new") is None
        p.set(module, "function", lambda: "module patched")

    assert patches.apply(setup) and patches.active()
    assert Target().method() == Target().inherited() == "patched" and Target.added == "new"  # type: ignore[attr-defined]
    assert module.function() == "module patched"
    assert patches.original(Target, "method") is method and patches.original(Target, "inherited") is inherited
    with pytest.raises(AttributeError):
        patches.original(Target, "added")
    assert patches.targets == [(Target, "method"), (Target, "inherited"), (Target, "added"), (module, "function")]

    assert patches.restore() and not patches.active()
    assert Target.__dict__["method"] is method and Target().method() == "original"
    assert "inherited" not in Target.__dict__ and Target().inherited() == "base"
    assert not hasattr(Target, "added")
    assert module.function is function
    assert patches.original(Target, "method") is method  # still answered, for work that outlives the patch
    with pytest.raises(KeyError):
        patches.original(Target, "value")


def test_apply_and_restore_are_idempotent():
    patches = Patches("test")
    calls = []

    def setup(p: Patches) -> None:
        calls.append(1)
        p.set(Target, "value", 2)

    assert patches.apply(setup)
    assert not patches.apply(setup) and calls == [1]
    assert patches.restore()
    assert not patches.restore() and Target.value == 1
    assert patches.apply(setup) and calls == [1, 1] and Target.value == 2
    patches.restore()


def test_restore_goes_in_reverse_order():
    patches = Patches("test")
    patches.apply(lambda p: (p.set(Target, "value", 2), p.set(Base, "value", 3)))
    # Target's own attribute first, then Base's (which did not exist): both come back
    assert patches.targets == [(Target, "value"), (Base, "value")]
    patches.restore()
    assert Target.value == 1 and not hasattr(Base, "value")


def test_a_failing_setup_restores_what_it_set():
    patches = Patches("test")

    def setup(p: Patches) -> None:
        p.set(Target, "value", 2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        patches.apply(setup)
    assert Target.value == 1 and not patches.active()


def test_concurrent_installs_patch_once():
    patches = Patches("test")
    calls = []
    barrier = threading.Barrier(8)

    def setup(p: Patches) -> None:
        calls.append(1)
        p.set(Target, "value", 2)

    def install() -> None:
        barrier.wait()
        patches.apply(setup)

    threads = [threading.Thread(target=install) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and Target.value == 2
    patches.restore()
    assert Target.value == 1


@pytest.mark.parametrize("lower_first", [True, False], ids=["lower restored first", "upper restored first"])
def test_two_extensions_on_one_attribute_restore_in_any_order(lower_first):
    lower, upper = Patches("lower"), Patches("upper")
    method = Target.__dict__["method"]
    lower.apply(lambda p: p.set(Target, "method", lambda self: "lower+" + p.original(Target, "method")(self)))
    upper.apply(lambda p: p.set(Target, "method", lambda self: "upper+" + p.original(Target, "method")(self)))
    assert Target().method() == "upper+lower+original"
    assert lower.active() and upper.active()
    first, second = (lower, upper) if lower_first else (upper, lower)
    first.restore()
    assert not first.active() and second.active()
    assert Target().method() == ("upper+original" if lower_first else "lower+original")
    second.restore()
    assert Target.__dict__["method"] is method


def test_a_patch_replaced_from_outside_is_inactive_and_applied_again():
    patches = Patches("test")
    patches.apply(lambda p: (p.set(Target, "value", 2), p.set(Target, "method", lambda self: "patched")))
    Target.value = 1  # someone put back what they found
    try:
        assert not patches.active()
        assert patches.apply(lambda p: (p.set(Target, "value", 2), p.set(Target, "method", lambda self: "again")))
        assert patches.active() and Target.value == 2 and Target().method() == "again"
    finally:
        patches.restore()
    assert Target.value == 1 and Target().method() == "original"


def test_locked_runs_the_original_holding_the_lock():
    lock = threading.Lock()
    wrapped = locked(lambda x: (x, lock.locked()), lock)
    assert wrapped(1) == (1, True) and not lock.locked()


# --------------------------------------------------------------------------- the registry


def test_the_registry_is_the_servers_list():
    from localaws import server

    assert server.install_extensions() == extensions.names()
    assert all(e.installed() for e in extensions.EXTENSIONS)
    for extension in extensions.EXTENSIONS:
        module = extension.load()
        assert extension.gap and "\n" not in extension.gap
        assert module.__doc__ and "moto" in module.__doc__, f"{extension.name}: the docstring names the moto gap"
        assert isinstance(module.PATCHES, Patches)


def test_for_handler_tests_switches_off_and_puts_back():
    extensions.install_all()
    with extensions.for_handler_tests():
        assert {e.name for e in extensions.EXTENSIONS if e.installed()} == {
            e.name for e in extensions.EXTENSIONS if e.in_handler_tests
        } >= {"s3_policy"}
    assert all(e.installed() for e in extensions.EXTENSIONS)


_ABSENT = object()


def _owners() -> Iterator[Any]:
    """moto's and botocore's modules and the classes defined in them, and ``os`` (the Lambda
    runtime puts its per-invocation mapping in place of ``os.environ``)."""
    yield os
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("moto.", "botocore.")):
            continue
        yield module
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                yield value


def _snapshot() -> dict[int, tuple[Any, dict[str, Any]]]:
    return {id(owner): (owner, dict(vars(owner))) for owner in _owners()}


def _changes(before: dict[int, tuple[Any, dict[str, Any]]]) -> list[str]:
    changed = []
    for owner, attributes in before.values():
        now = vars(owner)
        for name in attributes.keys() | now.keys():
            if attributes.get(name, _ABSENT) is not now.get(name, _ABSENT):
                changed.append(f"{getattr(owner, '__qualname__', owner.__name__)}.{name}")
    return sorted(changed)


@contextmanager
def _kept(installed: bool, module: Any) -> Iterator[None]:
    try:
        yield
    finally:
        if installed:
            module.install()
        else:
            module.uninstall()


@pytest.mark.parametrize("module_name", [e.module for e in extensions.EXTENSIONS] + ["localaws.faults"])
def test_install_and_uninstall_round_trip_moto(module_name):
    module = importlib.import_module(module_name)
    with _kept(module.installed(), module):
        module.install()  # once first: imports whatever it touches, so the snapshots compare like with like
        module.uninstall()
        assert not module.installed()
        before = _snapshot()
        module.install()
        module.install()
        assert module.installed()
        patched = _changes(before)
        assert patched, "install patched nothing"
        assert {f"{getattr(o, '__qualname__', o.__name__)}.{n}" for o, n in module.PATCHES.targets} == set(patched)
        module.uninstall()
        module.uninstall()
        assert not module.installed()
        assert _changes(before) == []


def test_faults_and_endpoints_share_the_dispatcher_in_either_order():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from localaws.sagemaker.endpoints import service as sagemaker_endpoints

    was = sagemaker_endpoints.installed(), faults.installed()
    sagemaker_endpoints.uninstall()
    faults.uninstall()
    moto_call = DomainDispatcherApplication.__dict__["__call__"]
    try:
        for first in (sagemaker_endpoints, faults):
            sagemaker_endpoints.install()
            faults.install()
            first.uninstall()
            assert faults.installed() is (first is not faults)
            assert sagemaker_endpoints.installed() is (first is faults)
            (faults if first is sagemaker_endpoints else sagemaker_endpoints).uninstall()
            assert DomainDispatcherApplication.__dict__["__call__"] is moto_call
    finally:
        if was[0]:
            sagemaker_endpoints.install()
        if was[1]:
            faults.install()
