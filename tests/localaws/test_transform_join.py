"""localaws.sagemaker_transform: JoinSource=Input joins each input line with its output line."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from localaws.sagemaker_sandbox import JobFailure
from localaws.sagemaker_transform import _transform_records, parse_filter


class Worker:
    def __init__(self, answer: bytes) -> None:
        self.answer, self.sent = answer, b""

    def invoke(self, payload: bytes, content_type: str, accept: str, timeout: float) -> bytes:
        self.sent = payload
        return self.answer


def settings(input_filter: str | None = None, output_filter: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(join=True, input_filter=parse_filter(input_filter),
                           output_filter=parse_filter(output_filter), content_type="text/csv", timeout=1.0)


def test_a_join_without_filters_appends_each_output_to_its_line():
    out, worker = io.BytesIO(), Worker(b"0.25\n0.5\n")
    _transform_records(worker, [b'1,"a,b",x', b"2,c,y"], settings(), "text/csv", out)
    assert worker.sent == b'1,"a,b",x\n2,c,y\n'
    assert out.getvalue() == b'1,"a,b",x,0.25\n2,c,y,0.5\n'


def test_a_join_with_filters_parses_and_selects():
    out, worker = io.BytesIO(), Worker(b"0.25\n0.5\n")
    _transform_records(worker, [b'1,"a,b",x', b"2,c,y"], settings("$[1:]", "$[0,-1]"), "text/csv", out)
    assert worker.sent == b'"a,b",x\nc,y\n'
    assert out.getvalue() == b"1,0.25\n2,0.5\n"


def test_a_join_needs_one_output_line_per_input_line():
    with pytest.raises(JobFailure, match="returned 1 records for a mini-batch of 2"):
        _transform_records(Worker(b"0.25\n"), [b"1,x", b"2,y"], settings(), "text/csv", io.BytesIO())
