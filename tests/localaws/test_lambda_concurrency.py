"""lambda_runtime: invocations run concurrently, each with its own environment (server mode).

Every test proves overlap with a rendezvous, not with timing: each handler announces itself
in a folder and waits until all the others have announced themselves too. Serialised
invocations could never all be inside their handlers at once, so they would time out.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from localaws.awslambda import runtime as lambda_runtime
from localaws.clients import client

pytestmark = pytest.mark.usefixtures("local_aws")

RENDEZVOUS = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    def handler(event, context):
        folder = Path(event["folder"])
        mine = os.environ["COLOR"]
        (folder / mine).write_text(mine)
        os.environ["WRITTEN_BY"] = mine  # stays in this invocation
        deadline = time.monotonic() + 20
        while len(list(folder.iterdir())) < event["expect"]:
            if time.monotonic() > deadline:
                raise TimeoutError("the other invocations never ran at the same time as this one")
            time.sleep(0.01)
        result = {"color": os.environ["COLOR"], "getenv": os.getenv("COLOR"), "written_by": os.environ["WRITTEN_BY"],
                  "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"]}
        if event.get("out"):
            Path(event["out"], mine + ".json").write_text(json.dumps(result))
        return result
    """
)


def test_two_functions_invoked_at_once_each_see_their_own_environment(make_function, invoke_fn, tmp_path):
    red = make_function(RENDEZVOUS, env={"COLOR": "red"})
    blue = make_function(RENDEZVOUS, env={"COLOR": "blue"})
    folder = tmp_path / "meet"
    folder.mkdir()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(invoke_fn, fn["FunctionName"], {"folder": str(folder), "expect": 2})
                   for fn in (red, blue)]
        (red_result, red_response), (blue_result, blue_response) = (f.result(timeout=60) for f in futures)
    assert "FunctionError" not in red_response, red_result
    assert "FunctionError" not in blue_response, blue_result
    assert red_result == {"color": "red", "getenv": "red", "written_by": "red", "function": red["FunctionName"]}
    assert blue_result == {"color": "blue", "getenv": "blue", "written_by": "blue", "function": blue["FunctionName"]}
    assert "COLOR" not in os.environ and "WRITTEN_BY" not in os.environ  # nothing leaked into the process


def test_concurrent_invocations_of_one_function_overlap(make_function, invoke_fn, tmp_path):
    """Each invocation's event names its colour through the environment of the call: the
    same function, three requests at once (one warm sandbox, three threads)."""
    handler = RENDEZVOUS.replace('mine = os.environ["COLOR"]', 'mine = event["me"]; os.environ["COLOR"] = mine')
    fn = make_function(handler, env={"COLOR": "unset"})
    folder = tmp_path / "meet"
    folder.mkdir()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(invoke_fn, fn["FunctionName"], {"folder": str(folder), "expect": 3, "me": me})
                   for me in ("a", "b", "c")]
        results = [f.result(timeout=60) for f in futures]
    assert [r[0]["color"] for r in results] == ["a", "b", "c"]  # each wrote only its own environment
    assert all("FunctionError" not in r[1] for r in results)


def test_asynchronous_invocations_run_concurrently(make_function, tmp_path):
    folder, out = tmp_path / "meet", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    functions = [make_function(RENDEZVOUS, env={"COLOR": color}) for color in ("red", "green", "blue")]
    for fn in functions:
        client("lambda").invoke(FunctionName=fn["FunctionName"], InvocationType="Event",
                                Payload=json.dumps({"folder": str(folder), "expect": 3, "out": str(out)}))
    assert lambda_runtime.drain(60)
    assert lambda_runtime.async_failures() == [] or all(
        f["function_name"] not in {fn["FunctionName"] for fn in functions} for f in lambda_runtime.async_failures())
    results = {p.stem: json.loads(p.read_text()) for p in out.iterdir()}
    assert {color: r["color"] for color, r in results.items()} == {"red": "red", "green": "green", "blue": "blue"}


def test_one_at_a_time_is_a_setting(make_function, tmp_path):
    """With one asynchronous worker the same three never meet: each gives up waiting."""
    folder = tmp_path / "meet"
    folder.mkdir()
    previous = lambda_runtime.set_async_concurrency(1)
    try:
        source = RENDEZVOUS.replace("time.monotonic() + 20", "time.monotonic() + 0.5")
        functions = [make_function(source, env={"COLOR": c}) for c in ("x", "y")]
        for fn in functions:
            client("lambda").invoke(FunctionName=fn["FunctionName"], InvocationType="Event",
                                    Payload=json.dumps({"folder": str(folder), "expect": 2}))
        assert lambda_runtime.drain(60)
    finally:
        lambda_runtime.set_async_concurrency(previous)
    failed = {f["function_name"] for f in lambda_runtime.async_failures()} & {fn["FunctionName"] for fn in functions}
    assert len(failed) == 1  # the one that ran first waited alone for the other (and the other found it)
    with pytest.raises(ValueError, match="at least 1"):
        lambda_runtime.set_async_concurrency(0)


def test_a_handler_may_invoke_another_function_synchronously(make_function, invoke_fn):
    """In server mode the nested request arrives on another thread: no lock to wait for."""
    inner = make_function("import os\ndef handler(event, context):\n    return os.environ['COLOR']\n",
                          env={"COLOR": "inner"})
    outer_source = textwrap.dedent(
        f"""
        import json, os
        import boto3

        def handler(event, context):
            response = boto3.client("lambda").invoke(FunctionName={inner["FunctionName"]!r})
            return [os.environ["COLOR"], json.loads(response["Payload"].read())]
        """
    )
    outer = make_function(outer_source, env={"COLOR": "outer"})
    result, response = invoke_fn(outer["FunctionName"])
    assert "FunctionError" not in response, result
    assert result == ["outer", "inner"]


def test_modules_of_the_same_name_in_two_functions_never_mix(make_function, invoke_fn, tmp_path):
    """Both folders hold helpers.py: their invocations take turns (each sees its own module),
    and neither waits forever."""
    def source(value: str) -> dict[str, str]:
        return {"app.py": "import helpers\ndef handler(event, context):\n    return helpers.VALUE\n",
                "helpers.py": f"VALUE = {value!r}\n"}

    one, two = make_function(source("one")), make_function(source("two"))
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(invoke_fn, fn["FunctionName"]) for fn in (one, two, one, two)]
        values = [f.result(timeout=60)[0] for f in futures]
    assert values == ["one", "two", "one", "two"]


# ----------------------------------------------------------------------------- the environment mapping
def test_thread_environ_passes_through_outside_invocations_and_isolates_inside():
    base: dict[str, str] = {"KEEP": "base"}
    env = lambda_runtime.ThreadEnviron(base)
    env["NEW"] = "x"
    assert base == {"KEEP": "base", "NEW": "x"}
    seen: dict[str, object] = {}
    ready, release = threading.Event(), threading.Event()

    def invocation() -> None:
        with env.bind({"KEEP": "mine", "ONLY": "here"}):
            env["WRITE"] = "inside"
            ready.set()
            release.wait(10)
            seen.update(dict(env))
            seen["bound"] = env.bound()

    thread = threading.Thread(target=invocation)
    thread.start()
    assert ready.wait(10)
    assert dict(env) == {"KEEP": "base", "NEW": "x"} and not env.bound()  # this thread: the real one
    release.set()
    thread.join(10)
    assert seen == {"KEEP": "mine", "NEW": "x", "ONLY": "here", "WRITE": "inside", "bound": True}
    assert base == {"KEEP": "base", "NEW": "x"}
    with pytest.raises(TypeError, match="str expected"):
        env["N"] = 1  # type: ignore[assignment]
    assert (env | {"A": "1"})["A"] == "1" and env.copy() == base


def test_os_environ_is_the_per_invocation_mapping_while_installed():
    assert lambda_runtime.installed()
    assert os.environ is lambda_runtime.environ
    os.environ["AUTOLOOP_TEST_PASSTHROUGH"] = "1"
    try:
        assert lambda_runtime.environ.base["AUTOLOOP_TEST_PASSTHROUGH"] == "1"
    finally:
        del os.environ["AUTOLOOP_TEST_PASSTHROUGH"]
