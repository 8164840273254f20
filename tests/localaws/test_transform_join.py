"""localaws.sagemaker.jobs.transform: JoinSource=Input joins each input line with its output line, and
mini-batches are cut exactly as a line-by-line reader would cut them."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from localaws.sagemaker.jobs import transform as sagemaker_transform
from localaws.sagemaker.jobs.transform import _assemble, _batches, _prepare, _results, parse_filter
from localaws.sagemaker.sandbox import JobFailure


def settings(input_filter: str | None = None, output_filter: str | None = None, *, join: bool = True) -> Any:
    return SimpleNamespace(
        join=join, input_filter=parse_filter(input_filter), output_filter=parse_filter(output_filter),
        content_type="text/csv", timeout=1.0, split="Line", records=True, assemble_line=True,
    )  # fmt: skip


def transform(lines: list[bytes], answer: bytes, config: Any) -> tuple[bytes, bytes]:
    """(payload sent to the model, output written) for one mini-batch."""
    batch, out = _prepare(b"".join(line + b"\n" for line in lines), config), io.BytesIO()
    _assemble(batch, answer, config, out)
    return batch.payload, out.getvalue()


def test_a_join_without_filters_appends_each_output_to_its_line():
    sent, out = transform([b'1,"a,b",x', b"2,c,y"], b"0.25\n0.5\n", settings())
    assert sent == b'1,"a,b",x\n2,c,y\n'
    assert out == b'1,"a,b",x,0.25\n2,c,y,0.5\n'


def test_a_join_with_filters_parses_and_selects():
    sent, out = transform([b'1,"a,b",x', b"2,c,y"], b"0.25\n0.5\n", settings("$[1:]", "$[0,-1]"))
    assert sent == b'"a,b",x\nc,y\n'
    assert out == b"1,0.25\n2,0.5\n"


def test_blank_answer_lines_are_ignored_and_quotes_in_the_answer_are_kept():
    _, out = transform([b"1,x", b"2,y"], b"\n0.25\n  \n0.5\r\n", settings())
    assert out == b"1,x,0.25\n2,y,0.5\n"
    _, out = transform([b"1,x", b"2,y"], b'"a,b"\nc\n', settings(None, "$[0,-1]"))
    assert out == b'1,"a,b"\n2,c\n'


def test_a_join_needs_one_output_line_per_input_line():
    with pytest.raises(JobFailure, match="returned 1 records for a mini-batch of 2"):
        transform([b"1,x", b"2,y"], b"0.25\n", settings())


@pytest.mark.parametrize(
    "answer", ["0.1\n0.2\n", "0.1\n\n0.2", " 0.1 \n\t\n0.2\n", "0.1\r\n0.2\x85\xa0\n", "a\x1fb\n\x1f\n0.2"]
)
def test_answer_lines_are_the_non_blank_ones(answer: str) -> None:
    expected = [line for line in answer.splitlines() if line.strip()]
    assert _results(answer.encode(), len(expected)) == expected


# --- mini-batches ---------------------------------------------------------------------------------


def reference_batches(stream: io.BytesIO, limit: int, single: bool) -> Iterator[list[bytes]]:
    """The line-by-line reader the block reader must agree with (the previous implementation)."""
    batch: list[bytes] = []
    size = 0
    while True:
        raw = stream.readline(limit + 2)
        if not raw:
            break
        if len(raw) > limit and not raw.endswith(b"\n"):
            raise JobFailure("ClientError: a record is larger than MaxPayloadInMB")
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        record = len(line) + 1
        if batch and (single or size + record > limit):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += record
    if batch:
        yield batch


def outcome(produce: Any) -> tuple[list[bytes], bool]:
    got: list[bytes] = []
    try:
        for item in produce:
            got.append(item)
    except JobFailure:
        return got, True
    return got, False


def random_input(rng: random.Random) -> bytes:
    pieces = []
    for _ in range(rng.randint(0, 40)):
        kind = rng.random()
        if kind < 0.7:
            line = ",".join(str(rng.randint(0, 10**rng.randint(1, 6))) for _ in range(rng.randint(1, 4)))
        elif kind < 0.78:
            line = ""
        elif kind < 0.84:
            line = rng.choice([" ", "\t", " \x0b ", "\x0c"])
        elif kind < 0.9:
            line = "a b," + rng.choice(["c\r", "d", " "])
        else:
            line = "x" * rng.randint(10, 70)
        pieces.append(line.encode() + rng.choice([b"\n", b"\n", b"\n", b"\r\n"]))
    data = b"".join(pieces)
    if data and rng.random() < 0.3:
        data = data.rstrip(b"\n")  # no line end on the last line
    return data


@pytest.mark.parametrize("single", [False, True])
def test_block_reader_cuts_the_same_batches_as_a_line_reader(monkeypatch: pytest.MonkeyPatch, single: bool) -> None:
    rng = random.Random(7)
    monkeypatch.setattr(sagemaker_transform, "_BLOCK", 16)  # many blocks, lines across blocks
    for _ in range(1500):
        data = random_input(rng)
        limit = rng.choice([20, 32, 50, 64, 200, 10_000])
        config = SimpleNamespace(max_bytes=limit, single=single)
        expected, failed = outcome(
            b"".join(line + b"\n" for line in batch) for batch in reference_batches(io.BytesIO(data), limit, single)
        )
        got, got_failed = outcome(_batches(io.BytesIO(data), config))  # type: ignore[arg-type]
        assert got_failed == failed, (data, limit)
        if not failed:  # on failure the job fails; how many batches went first does not matter
            assert got == expected, (data, limit)


@pytest.mark.parametrize("trailing", [b"\n", b""])
def test_a_plain_join_is_written_a_slice_at_a_time(monkeypatch: pytest.MonkeyPatch, trailing: bytes) -> None:
    monkeypatch.setattr(sagemaker_transform, "_JOIN_SLICE", 3)
    lines = [f"{i},é{i}".encode() for i in range(10)]
    answer = b"\n".join(f"0.{i}".encode() for i in range(10)) + trailing
    _, out = transform(lines, answer, settings())
    assert out == b"".join(f"{i},é{i},0.{i}\n".encode() for i in range(10))


# --- the output upload ----------------------------------------------------------------------------


def test_output_is_uploaded_in_parts_and_appears_whole(mocked_aws: None) -> None:
    from localaws.clients import client
    from localaws.sagemaker.jobs.transform import _StreamingUpload

    s3 = client("s3")
    s3.create_bucket(Bucket="out")
    data = b"".join(f"{i},0.{i}\n".encode() for i in range(1_200_000))  # about 15 MB: 3 parts and a rest
    upload = _StreamingUpload(s3, "out", "big.out")
    for start in range(0, len(data), 1 << 20):
        upload.write(data[start : start + (1 << 20)])
        assert "Contents" not in s3.list_objects_v2(Bucket="out")  # nothing visible before the end
    upload.finish()
    assert upload.submitted == len(data) // _StreamingUpload.PART + 1
    assert s3.get_object(Bucket="out", Key="big.out")["Body"].read() == data

    small = _StreamingUpload(s3, "out", "small.out")
    small.write(b"1,0.5\n")
    small.finish()
    assert s3.get_object(Bucket="out", Key="small.out")["Body"].read() == b"1,0.5\n"

    failed = _StreamingUpload(s3, "out", "failed.out")
    failed.write(data)
    failed.abort()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="out")["Contents"]] == ["big.out", "small.out"]
    assert not s3.list_multipart_uploads(Bucket="out").get("Uploads")
