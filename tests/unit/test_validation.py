"""Validation of incoming CSVs: every bad-input case gets its own named error."""

import json
from pathlib import Path

import pytest

from autoloop import errors
from autoloop.config import parse_model_config
from autoloop.validation import validate_csv

ROOT = Path(__file__).resolve().parents[2]
CONFIG = parse_model_config((ROOT / "ml/models/churn.json").read_bytes(), "churn.json").model_copy(
    update={"min_rows": 3}
)
HEADER = ",".join(CONFIG.columns)
ROW = "1,12,70.5,2,3.4,41,month-to-month,card,north"


def run(text: str | bytes, chunk: int = 7, config=CONFIG):
    data = text.encode() if isinstance(text, str) else text
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return validate_csv(chunks, len(data), config, "s3://b/incoming/churn/x.csv")


def good(rows: int = 5) -> str:
    return HEADER + "\n" + "\n".join([ROW] * rows) + "\n"


def test_valid_file_is_summarised():
    summary = run(good(5))
    assert summary.rows == 5
    assert summary.columns == len(CONFIG.columns)
    assert summary.missing_labels == 0


def test_bom_crlf_and_quoted_newlines_are_fine():
    quoted = ROW.replace("north", '"no\nrth"')
    text = "\ufeff" + HEADER + "\r\n" + "\r\n".join([ROW, ROW, quoted, ROW]) + "\r\n"
    assert run(text).rows == 4


def test_missing_labels_are_counted_not_fatal():
    text = good(4) + ROW.replace("1,", ",", 1) + "\n"
    summary = run(text)
    assert summary.rows == 5 and summary.missing_labels == 1


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("", errors.EmptyDataset, "empty"),
        ("\n\n", errors.EmptyDataset, "no header"),
        (HEADER + "\n", errors.EmptyDataset, "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", errors.NotCsv, "NUL|not UTF-8"),
        (b"a,b\x00c\n", errors.NotCsv, "NUL"),
        (b"caf\xe9,1\n", errors.NotCsv, "UTF-8"),
        ("just some prose without commas\nmore prose\n", errors.NotCsv, "no comma-separated header"),
        (HEADER.replace(",region", "") + "\n" + ROW + "\n", errors.SchemaMismatch, r"missing columns \['region'\]"),
        (HEADER + ",extra\n" + ROW + ",1\n", errors.SchemaMismatch, r"unexpected columns \['extra'\]"),
        (HEADER + "\n" + ROW + ",5\n", errors.SchemaMismatch, "line 2 has 10 fields"),
        (HEADER.replace("churned,", "") + ",churned\n", errors.LabelColumnMisplaced, "column 9"),
        (HEADER.replace("tenure_months,monthly_charges", "monthly_charges,tenure_months") + "\n",
         errors.SchemaMismatch, "wrong order"),
        (HEADER.replace("age", "tenure_months") + "\n", errors.SchemaMismatch, "duplicate columns"),
        (HEADER + "\n" + "\n".join([ROW.replace(",41,", ",,")] * 4) + "\n", errors.AllNanColumn, "'age'"),
        (HEADER + "\n" + "\n".join([ROW.replace(",41,", ",nan,")] * 4) + "\n", errors.AllNanColumn, "'age'"),
        (HEADER + "\n" + ROW.replace("1,", "yes,", 1) + "\n", errors.InvalidLabels, "'yes'"),
        (HEADER + "\n" + ROW.replace(",41,", ",forty,") + "\n", errors.NonNumericValue, "'forty'"),
        (HEADER + "\n" + ROW.replace(",41,", ",inf,") + "\n", errors.NonNumericValue, "'inf'"),
        (HEADER + "\n" + ROW + "\n", errors.TooFewRows, "needs at least 3"),
        (HEADER + '\n"unterminated,1\n', errors.SchemaMismatch, "fields"),
    ],
)
def test_bad_input_gets_a_named_error(text, error, match):
    with pytest.raises(error, match=match) as caught:
        run(text)
    assert isinstance(caught.value, errors.InvalidInputData)
    assert caught.value.hint  # says what to do


def test_size_limit_is_checked_before_reading():
    config = CONFIG.model_copy(update={"max_bytes": 10})

    def never():
        raise AssertionError("the body must not be read")
        yield b""

    with pytest.raises(errors.DatasetTooLarge, match="limit"):
        validate_csv(never(), 11, config, "s3://b/k")


def test_errors_are_json_serialisable_messages():
    with pytest.raises(errors.SchemaMismatch) as caught:
        run(HEADER + ",x\n")
    assert json.loads(json.dumps({"e": str(caught.value)}))["e"].startswith("s3://b/incoming")
