"""The inference container of a local Batch Transform job (run as a subprocess).

Gap in moto: moto runs no model for ``CreateTransformJob``. On SageMaker the model's
container (sagemaker-inference-toolkit behind a model server) loads the user's inference
module and answers one HTTP invocation per mini-batch. This script stands in for that
container without Docker or HTTP: it imports ``SAGEMAKER_PROGRAM`` from the code folder,
calls ``model_fn(model_dir)`` once, then answers requests that
:mod:`localaws.sagemaker.jobs.transform` writes on stdin, framed as one JSON header line
(``{"n": <bytes>, "content_type": ..., "accept": ...}``) followed by ``n`` payload bytes.
Each answer is a JSON header line (``{"ok": true, "n": ..., "content_type": ...}`` or
``{"ok": false, "error": ...}``) plus the body, on the original stdout. The user code's own
prints go to stderr (the job log), so they cannot corrupt the protocol.

Handlers follow the toolkit: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``
(each may take a trailing ``context``, passed as None), or ``transform_fn`` alone. JSON
and CSV payloads arrive decoded as str. Missing handlers fall back to defaults like the
scikit-learn container's (numpy decode, ``model.predict``, encode to ``accept``).
Standalone on purpose: it imports nothing from ``localaws``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import io
import json
import os
import sys
import traceback
from typing import IO, Any

UTF8_TYPES = ("application/json", "text/csv")


def _base(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def default_input_fn(input_data: Any, content_type: str) -> Any:
    import numpy as np

    kind = _base(content_type)
    if kind == "text/csv":
        return np.genfromtxt(io.StringIO(input_data), delimiter=",", ndmin=2)
    if kind == "application/json":
        return np.array(json.loads(input_data))
    if kind == "application/x-npy":
        return np.load(io.BytesIO(input_data), allow_pickle=False)
    raise ValueError(f"Content type {content_type} is not supported by the default input_fn")


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[Any, str]:
    import numpy as np

    kind = _base(accept)
    array = np.asarray(prediction)
    if kind == "application/json":
        return json.dumps(array.tolist()), accept
    if kind == "text/csv":
        rows = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
        return "".join(",".join(str(v) for v in row) + "\n" for row in rows), accept
    if kind == "application/x-npy":
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue(), accept
    raise ValueError(f"Accept {accept} is not supported by the default output_fn")


def _positional(fn: Any) -> int | None:
    """How many positional parameters ``fn`` takes; None if its signature cannot be read."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _call(fn: Any, *args: Any, positional: int | None = -1) -> Any:
    """Call a handler, adding a None ``context`` when it takes one more positional argument
    (``positional``: its count if known, as :class:`Handlers` keeps it)."""
    count = _positional(fn) if positional == -1 else positional
    if count is not None and count > len(args):
        return fn(*args, None)
    return fn(*args)


class Handlers:
    def __init__(self, module: Any) -> None:
        self.model_fn = getattr(module, "model_fn", None)
        if self.model_fn is None:
            raise NotImplementedError(
                "Please provide a model_fn implementation "
                f"(none in {getattr(module, '__file__', module)})"
            )
        self.transform_fn = getattr(module, "transform_fn", None)
        custom = [n for n in ("input_fn", "predict_fn", "output_fn") if hasattr(module, n)]
        if self.transform_fn is not None and custom:
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with input_fn, "
                "predict_fn, and/or output_fn implementation"
            )
        self.input_fn = getattr(module, "input_fn", default_input_fn)
        self.predict_fn = getattr(module, "predict_fn", default_predict_fn)
        self.output_fn = getattr(module, "output_fn", default_output_fn)
        # read once: inspect.signature on every request was about 40 % of a tiny model's time
        self.arity = {
            name: _positional(fn)
            for name, fn in (("transform", self.transform_fn), ("input", self.input_fn),
                             ("predict", self.predict_fn), ("output", self.output_fn))
            if fn is not None
        }  # fmt: skip

    def invoke(self, model: Any, payload: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        data: Any = payload.decode("utf-8") if _base(content_type) in UTF8_TYPES else payload
        arity = self.arity
        if self.transform_fn is not None:
            result = _call(self.transform_fn, model, data, content_type, accept, positional=arity["transform"])
        else:
            features = _call(self.input_fn, data, content_type, positional=arity["input"])
            prediction = _call(self.predict_fn, features, model, positional=arity["predict"])
            result = _call(self.output_fn, prediction, accept, positional=arity["output"])
        body, response_type = (result[0], result[1]) if isinstance(result, tuple) else (result, accept)
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray)):
            body = str(body).encode("utf-8")
        return bytes(body), str(response_type)


def _send(out: IO[bytes], header: dict[str, Any], body: bytes = b"") -> None:
    out.write(json.dumps(header).encode("utf-8") + b"\n")
    if body:
        out.write(body)
    out.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("request truncated")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _error() -> str:
    lines = traceback.format_exc().strip().splitlines()
    return lines[-1] if lines else "unknown error"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--program", required=True)
    args = parser.parse_args(argv)

    protocol = os.fdopen(os.dup(1), "wb")  # the answers; fd 1 itself now goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer

    try:
        sys.path.insert(0, args.code_dir)
        path = os.path.join(args.code_dir, args.program)
        name = os.path.splitext(os.path.basename(args.program))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        handlers = Handlers(module)
        model = _call(handlers.model_fn, args.model_dir)
    except BaseException:
        traceback.print_exc()
        _send(protocol, {"ready": False, "error": _error()})
        return 1
    _send(protocol, {"ready": True})

    while True:
        line = requests.readline()
        if not line:
            return 0
        request = json.loads(line)
        payload = _read_exact(requests, int(request.get("n") or 0))
        try:
            body, response_type = handlers.invoke(
                model, payload, request.get("content_type"), request.get("accept")
            )
        except Exception:
            traceback.print_exc()
            sys.stderr.flush()
            _send(protocol, {"ok": False, "error": _error()})
            continue
        _send(protocol, {"ok": True, "n": len(body), "content_type": response_type}, body)


if __name__ == "__main__":
    sys.exit(main())
