"""adapters.client under concurrent handlers (the local Lambda runtime runs them on threads)."""

from __future__ import annotations

import threading

from autoloop import adapters


def test_concurrent_first_uses_of_a_client_make_one_client(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    adapters.set_client("sts", None)
    barrier = threading.Barrier(12)
    made: list[object] = []
    errors: list[BaseException] = []

    def first_use() -> None:
        barrier.wait(10)
        try:
            made.append(adapters.client("sts"))
        except BaseException as exc:  # boto3's default session is not thread-safe
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
        assert len(made) == 12 and len({id(c) for c in made}) == 1
    finally:
        adapters.set_client("sts", None)
