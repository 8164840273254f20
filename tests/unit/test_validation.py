"""Validation of incoming CSVs: every bad-input case gets its own named error."""

import json
from pathlib import Path

import pytest

from autoloop import errors
from autoloop.config import parse_model_config
from autoloop.validation import validate_csv

ROOT = Path(__file__).resolve().parents[2]
CONFIG = parse_model_config((ROOT / "models/churn/config.json").read_bytes(), "churn.json").model_copy(
    update={"min_rows": 3}
)
HEADER = ",".join(CONFIG.columns)
ROW = "1,12,70.5,2,3.4,41,month-to-month,card,north"


def run(text: str | bytes, chunk: int = 7, config=CONFIG):
    data = text.encode() if isinstance(text, str) else text
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return validate_csv(chunks, len(data), config, "s3://b/incoming/churn/x.csv")


ROW0 = "0" + ROW[1:]


def good(rows: int = 6) -> str:
    """``rows`` valid rows, labels 1, 0, 1, ... (a binary model needs 3 rows of each class)."""
    return HEADER + "\n" + "\n".join(ROW if i % 2 == 0 else ROW0 for i in range(rows)) + "\n"


def test_valid_file_is_summarised():
    summary = run(good(6))
    assert summary.rows == 6
    assert summary.columns == len(CONFIG.columns)
    assert summary.missing_labels == 0


def test_bom_crlf_and_quoted_newlines_are_fine():
    quoted = ROW.replace("north", '"no\nrth"')
    text = "\ufeff" + HEADER + "\r\n" + "\r\n".join([ROW, ROW, quoted, ROW, ROW0, ROW0, ROW0]) + "\r\n"
    assert run(text).rows == 7


def test_missing_labels_are_counted_not_fatal():
    text = good(6) + ROW.replace("1,", ",", 1) + "\n"
    summary = run(text)
    assert summary.rows == 7 and summary.missing_labels == 1


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("", errors.EmptyDataset, "empty"),
        ("\n\n", errors.EmptyDataset, "no header"),
        (HEADER + "\n", errors.EmptyDataset, "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", errors.NotCsv, "PNG image"),
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
        (HEADER + '\n"unterminated,1\n', errors.NotCsv, "starts on line 2 is never closed"),
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


def test_the_published_limit_is_what_validate_input_can_check_and_one_byte_more_is_refused():
    """The default (and churn's) max_bytes is the ceiling sized in autoloop.config; a file of
    exactly that size passes the size check, one byte more gets DatasetTooLarge, unread."""
    from autoloop.config import MAX_VALIDATED_BYTES
    from autoloop.validation import check_size

    assert CONFIG.max_bytes == MAX_VALIDATED_BYTES == 1024**3
    check_size(MAX_VALIDATED_BYTES, CONFIG, "s3://b/k")

    def never():
        raise AssertionError("the body must not be read")
        yield b""

    with pytest.raises(errors.DatasetTooLarge) as caught:
        validate_csv(never(), MAX_VALIDATED_BYTES + 1, CONFIG, "s3://b/incoming/churn/big.csv")
    message = str(caught.value)
    assert "1,073,741,825 bytes" in message and "limit for model churn is 1,073,741,824" in message
    assert "Split the file" in message and "\n" not in message


def test_a_model_config_cannot_raise_max_bytes_beyond_what_validate_input_can_check():
    raw = json.loads((ROOT / "models/churn/config.json").read_text())
    with pytest.raises(errors.InvalidModelConfig, match="max_bytes"):
        parse_model_config(json.dumps({**raw, "max_bytes": 2 * 1024**3}), "churn.json")


def test_errors_are_json_serialisable_messages():
    with pytest.raises(errors.SchemaMismatch) as caught:
        run(HEADER + ",x\n")
    assert json.loads(json.dumps({"e": str(caught.value)}))["e"].startswith("s3://b/incoming")


# -- encodings, numbers and structure that used to pass validation and fail a paid job -------
def test_a_utf8_bom_is_dropped_and_the_header_matches():
    assert run(b"\xef\xbb\xbf" + good(6).encode(), chunk=1).rows == 6


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (good(3).encode("utf-16"), "UTF-16 text"),
        (good(3).encode("utf-16-le"), "UTF-16 text"),
        (good(3).encode("utf-32"), "UTF-32 text"),
        (__import__("gzip").compress(good(3).encode()), "gzip-compressed"),
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP archive"),
        (b"PAR1\x15\x04", "Parquet"),
    ],
)
def test_other_encodings_and_formats_are_named(data, match):
    with pytest.raises(errors.NotCsv, match=match) as caught:
        run(data)
    assert "UTF-8" in caught.value.hint or "CSV" in caught.value.hint


def test_latin1_is_located_by_absolute_byte_and_line_across_chunks():
    text = good(3) + ROW.replace("north", "n\xf6rth") + "\n"
    data = text.encode("latin-1")
    offset = data.index(b"\xf6")
    for chunk in (1, 7, 1 << 20):
        with pytest.raises(errors.NotCsv, match=rf"byte {offset:,} \(line 5\) is 0xF6.*'ö'"):
            run(data, chunk=chunk)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("inf", errors.ValueOutOfRange, "infinite"),
        ("-Infinity", errors.ValueOutOfRange, "infinite"),
        ("1e999", errors.ValueOutOfRange, "overflows"),
        ("1e308", errors.ValueOutOfRange, "far too large"),
        ("-2.5e151", errors.ValueOutOfRange, "far too large"),
        ("1_000", errors.NonNumericValue, "'1_000'"),
        ("\u0661\u0662", errors.NonNumericValue, "numeric but holds"),
        ("0x1A", errors.NonNumericValue, "numeric but holds"),
    ],
)
def test_numbers_pandas_would_not_read_or_can_not_train_on_are_refused(value, error, match):
    with pytest.raises(error, match=match) as caught:
        run(good(3) + ROW.replace(",41,", f",{value},") + "\n")
    assert isinstance(caught.value, errors.NonNumericValue)  # one family for Catch/except


@pytest.mark.parametrize("value", ["1e150", "-1e150", " 12 ", "+5", ".5", "5.", "1E3"])
def test_numbers_at_the_edge_are_accepted(value):
    assert run(good(6) + ROW.replace(",41,", f",{value},") + "\n").rows == 7


@pytest.mark.parametrize("value", ["nan", "-nan", "NaN", "#N/A", "<NA>", "n/a"])
def test_nan_spellings_are_missing_values(value):
    assert run(good(6) + ROW.replace(",41,", f",{value},") + "\n").rows == 7
    with pytest.raises(errors.AllNanColumn, match="'age'"):
        run(HEADER + "\n" + "\n".join([ROW.replace(",41,", f",{value},")] * 4) + "\n")


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (good(3).replace(",tenure", ", tenure"), errors.SchemaMismatch, r"spaces around them: \[' tenure_months'\]"),
        (good(3).replace("churned,", "Churned,", 1), errors.SchemaMismatch, "case-sensitive"),
        (good(3) + good(3), errors.SchemaMismatch, "line 5 repeats the header"),
        (good(3).replace("\n", "\r"), errors.NotCsv, "CR-only"),
        (good(3) + ROW.replace("north", '"no"rth') + "\n", errors.NotCsv, "line 5: text follows a closing quote"),
        (HEADER + "\n" + ROW.replace("north", "x" * 200_000) + "\n", errors.NotCsv, "longer than 131,072"),
        (good(3) + ROW.replace(",north", ',"north\nsouth"') + ",9\n", errors.SchemaMismatch,
         "spans lines 5-6"),
    ],
)
def test_structural_problems_say_where_and_what_to_do(text, error, match):
    with pytest.raises(error, match=match) as caught:
        run(text)
    assert caught.value.hint
