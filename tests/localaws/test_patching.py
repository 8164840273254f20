"""localaws.patching: the one patch helper."""

from __future__ import annotations

import threading
import types

import pytest

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
