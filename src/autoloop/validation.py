"""Validate an incoming CSV against its model config, streaming, before any job starts."""

from __future__ import annotations

import codecs
import csv
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from autoloop.config import MAX_VALIDATED_BYTES, VALIDATE_TIMEOUT_SECONDS, ModelConfig, class_text
from autoloop.errors import (
    AllNanColumn,
    DatasetTooLarge,
    EmptyDataset,
    InvalidLabels,
    LabelColumnMisplaced,
    NonNumericValue,
    NotCsv,
    SchemaMismatch,
    TooFewRows,
    ValueOutOfRange,
)

# What pandas.read_csv (the preprocess job) reads as missing by default, plus "NAN".
MISSING = frozenset({
    "", "nan", "NaN", "NAN", "-nan", "-NaN", "NA", "N/A", "n/a", "null", "NULL", "None", "<NA>",
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN",
})
LABEL_VALUES = frozenset({"0", "1", "0.0", "1.0"})
#: A classifier needs this many labelled rows of each class: preprocess.py splits every class
#: into train, validation and test, one row each at least.
MIN_CLASS_ROWS = 3
#: More distinct labels than this is not a multiclass problem (a numeric target as classes?).
MAX_CLASSES = 1000
_SNIFF_BYTES = 4096
# A number as pandas' C parser reads it: ASCII digits only. Python's float() also takes
# "1_000", "١٢" (Arabic-Indic digits) and "infinity", which pandas would silently turn into
# missing values (or inf) in the preprocess job, after validation said the file was fine.
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INFINITE_RE = re.compile(r"[+-]?inf(?:inity)?", re.IGNORECASE)
_NAN_RE = re.compile(r"[+-]?nan", re.IGNORECASE)
#: Larger magnitudes are refused. The preprocess job standardises numeric features, which
#: sums squared deviations; beyond ~1.3e154 one square overflows float64 to inf and training
#: fails on NaN after a paid job has started. 1e150 leaves room for 10^8 rows of such values.
MAX_ABS_VALUE = 1e150
#: Magic numbers of formats that are sometimes uploaded with a .csv name.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed", "Upload the uncompressed CSV (gunzip it first)."),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)",
     "Export the sheet as 'CSV UTF-8 (comma delimited)' and upload that file."),
    (b"PAR1", "a Parquet file", "Convert it to CSV (UTF-8, comma-separated, with a header) and upload that."),
    (b"\x89PNG", "a PNG image", "Upload the training data as CSV."),
    (b"%PDF", "a PDF document", "Upload the training data as CSV."),
)
_SAVE_AS_UTF8 = "Save the file as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)') and upload it again."


@dataclass(frozen=True)
class DatasetSummary:
    rows: int
    columns: int
    bytes: int
    missing_labels: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_size(size: int, config: ModelConfig, where: str) -> None:
    if size == 0:
        raise EmptyDataset(f"{where} is empty (0 bytes).")
    if size > config.max_bytes:
        raise DatasetTooLarge(
            f"{where} is {size:,} bytes; the limit for model {config.model} is {config.max_bytes:,}.",
            "Split the file into parts under the limit and upload each, or raise max_bytes in the model config "
            f"(at most {MAX_VALIDATED_BYTES:,} bytes, what ValidateInput can check within Lambda's "
            f"{VALIDATE_TIMEOUT_SECONDS} s).",
        )


def _sniff(head: bytes, where: str) -> None:
    """Name what the first bytes show, when they are not UTF-8 text."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise NotCsv(f"{where} is UTF-32 text, not UTF-8.", _SAVE_AS_UTF8)
    even, odd = head[0::2], head[1::2]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(head) >= 8 and max(even.count(0), odd.count(0)) >= 0.9 * len(odd)
    ):
        raise NotCsv(f"{where} is UTF-16 text, not UTF-8 (every other byte is NUL).", _SAVE_AS_UTF8)
    for magic, what, hint in _MAGIC:
        if head.startswith(magic):
            raise NotCsv(f"{where} is {what}, not a CSV text file.", hint)
    if b"\x00" in head:
        raise NotCsv(f"{where} contains NUL bytes at byte {head.index(0):,}: it is binary, not CSV text.",
                     "Upload the training data as a UTF-8 CSV file with a header line.")


def _not_utf8(exc: UnicodeDecodeError, data: bytes, offset: int, line: int, where: str) -> NotCsv:
    bad = data[exc.start : exc.end]
    guess = bad.decode("cp1252", errors="replace")
    return NotCsv(
        f"{where} is not UTF-8 text: byte {offset:,} (line {line}) is 0x{bad.hex().upper()} ({exc.reason}), "
        f"which reads as {guess!r} in Windows-1252/Latin-1.",
        _SAVE_AS_UTF8,
    )


def _text_lines(chunks: Iterable[bytes], where: str) -> Iterator[str]:
    """Decode UTF-8 (a BOM is dropped) and yield lines with their line endings.

    The first bytes are sniffed first, so UTF-16, gzip, ZIP and other binary uploads get a
    message naming what they are rather than a decoding error.
    """
    stream = iter(chunks)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= _SNIFF_BYTES:
            break
    _sniff(head[:_SNIFF_BYTES], where)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    fed = 0  # bytes given to the decoder so far
    lines = 1  # line number of the start of ``pending``
    for chunk in itertools.chain([head], stream):
        buffered = decoder.getstate()[0]
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            data = buffered + chunk
            offset = fed - len(buffered) + exc.start
            line = lines + pending.count("\n") + data[: exc.start].count(b"\n")
            raise _not_utf8(exc, data, offset, line, where) from exc
        fed += len(chunk)
        *complete, pending = pending.split("\n")
        lines += len(complete)
        for line_text in complete:
            yield line_text + "\n"
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise NotCsv(f"{where} ends in the middle of a UTF-8 character (truncated upload?).", _SAVE_AS_UTF8) from exc
    if pending:
        yield pending


def _check_header(header: list[str], config: ModelConfig, where: str) -> None:
    expected = list(config.columns)
    if header == expected:
        return
    padded = [h for h in header if h != h.strip()]
    if padded and [h.strip() for h in header] == expected:
        # The preprocess job matches names exactly, so this would fail after it started.
        raise SchemaMismatch(
            f"{where}: column names have spaces around them: {padded}.",
            f"Remove the spaces from the header line; expected exactly: {','.join(expected)}",
        )
    header = [h.strip() for h in header]
    if len(header) == 1 and len(expected) > 1:
        raise NotCsv(
            f"{where} has no comma-separated header (first line: {header[0][:80]!r}).",
            f"Expected a CSV header: {','.join(expected)}",
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise SchemaMismatch(f"{where} has duplicate columns: {dupes}.")
    missing = [c for c in expected if c not in header]
    extra = [h for h in header if h not in expected]
    if missing or extra:
        case = " (column names are case-sensitive)" if [h.lower() for h in header] == expected else ""
        raise SchemaMismatch(
            f"{where} does not match the schema of model {config.model}: "
            f"missing columns {missing}, unexpected columns {extra}{case}.",
            f"Expected exactly: {','.join(expected)}",
        )
    if header[0] != config.label:
        raise LabelColumnMisplaced(
            f"{where}: the label column {config.label!r} is column {header.index(config.label) + 1}; "
            "it must be the first column.",
            f"Reorder the columns to: {','.join(expected)}",
        )
    raise SchemaMismatch(
        f"{where}: columns are in the wrong order.", f"Expected: {','.join(expected)}"
    )


def _is_missing(value: str) -> bool:
    return value in MISSING or bool(_NAN_RE.fullmatch(value))


def _check_number(value: str, column: str, line: int, where: str) -> None:
    """Raise unless ``value`` (stripped, not missing) is a finite number of sane magnitude."""
    if not _NUMBER_RE.fullmatch(value):  # the common case first: one regex per value
        if _INFINITE_RE.fullmatch(value):
            raise ValueOutOfRange(
                f"{where} line {line}: column {column!r} holds {value!r}, an infinite number; "
                "the model can't be trained on infinite values."
            )
        raise NonNumericValue(
            f"{where} line {line}: column {column!r} is numeric but holds {value[:40]!r}.",
            "Numbers use ASCII digits, an optional sign, '.' as the decimal point and an optional "
            "exponent (1e3), with no thousands separators; leave the cell empty when the value is "
            "missing. Fix the file and upload it again; the original object is left untouched.",
        )
    number = float(value)
    if not abs(number) <= MAX_ABS_VALUE:
        kind = "an infinite number (it overflows float64)" if math.isinf(number) else "far too large"
        raise ValueOutOfRange(
            f"{where} line {line}: column {column!r} holds {value[:40]!r}, {kind}; numeric values must "
            "lie within ±1e150 for the preprocessing's scaling not to overflow."
        )


class _LabelCheck:
    """What a label may be for the model's task: binary 0 or 1; multiclass any text (one of
    ``classes`` when the config lists them), at most MAX_CLASSES of them; regression a finite
    number. :meth:`first` checks a label text not seen before and says whether to count it (class
    labels; a regression target is checked every time instead, so its distinct values are never
    all held); :meth:`finish` checks the counts."""

    def __init__(self, config: ModelConfig, where: str) -> None:
        self.config, self.where = config, where
        self.allowed = {class_text(c) for c in config.classes} if config.classes else None
        self.classes: set[str] = set()
        self.values: set[float] = set()  # regression: up to 2 distinct targets

    def first(self, label: str, line: int) -> bool:
        config, where = self.config, self.where
        name = config.label
        if config.task == "binary" and label not in LABEL_VALUES:
            raise InvalidLabels(
                f"{where} line {line}: label {name!r} is {label[:40]!r}; expected 0 or 1 (task binary).",
                "Labels are 0 or 1 (empty when unknown); fix the file and upload it again.",
            )
        if config.task == "regression" and not (_NUMBER_RE.fullmatch(label) and abs(float(label)) <= MAX_ABS_VALUE):
            raise InvalidLabels(
                f"{where} line {line}: label {name!r} is {label[:40]!r}; a regression model needs a finite number "
                f"within ±1e150.",
                "Write the target as a number with ASCII digits and '.' as the decimal point (empty when unknown); "
                "if the labels are categories, set \"task\": \"multiclass\" in the model config.",
            )
        if config.task == "multiclass" and self.allowed is not None and class_text(label) not in self.allowed:
            raise InvalidLabels(
                f"{where} line {line}: label {name!r} is {label[:40]!r}, not one of the config's classes "
                f"{sorted(self.allowed)}.",
                "Fix the label, or add the class to 'classes' in the model config and run `autoloop publish`.",
            )
        if config.task == "regression":
            if len(self.values) < 2:
                self.values.add(float(label))
            return False
        self.classes.add(class_text(label))
        if len(self.classes) > MAX_CLASSES:
            raise InvalidLabels(
                f"{where} line {line}: label {name!r} takes more than {MAX_CLASSES:,} distinct values; a "
                f"{config.task} model takes at most {MAX_CLASSES:,} classes.",
                "If the label is a number to predict, set \"task\": \"regression\" in the model config.",
            )
        return True

    def finish(self, seen: dict[str, int]) -> None:
        config, where = self.config, self.where
        if config.task == "regression":
            if len(self.values) < 2:
                raise InvalidLabels(f"{where}: every labelled row has the same {config.label!r} "
                                    f"({next(iter(self.values), '')!r}); a regression model needs a target that "
                                    "varies.", "Upload data in which the target takes different values.")
            return
        counts: dict[str, int] = {}
        for text, n in seen.items():
            key = class_text(text)
            counts[key] = counts.get(key, 0) + n
        if len(counts) < 2:
            only = next(iter(counts), "")
            raise InvalidLabels(
                f"{where}: label {config.label!r} has a single class ({only!r}) in every labelled row; "
                f"a {config.task} model needs at least 2 classes.",
                "Upload data with examples of every class.",
            )
        rare = sorted(c for c, n in counts.items() if n < MIN_CLASS_ROWS)
        if rare:
            shown = ", ".join(f"{c!r} ({counts[c]})" for c in rare[:10])
            raise InvalidLabels(
                f"{where}: class(es) {shown} of label {config.label!r} have fewer than {MIN_CLASS_ROWS} rows; "
                "each class needs a row in each of the train, validation and test splits.",
                "Add rows of those classes, or merge or drop them, and upload the file again.",
            )


def _csv_problem(exc: csv.Error, first_line: int, line: int, where: str) -> NotCsv:
    """A csv.Error, in words that say where the file is broken and how to fix it."""
    text = str(exc)
    if "unexpected end of data" in text:
        return NotCsv(
            f"{where}: the quoted field that starts on line {first_line} is never closed; the rest "
            "of the file would be read as one value.",
            "Close the quote (a quote inside a quoted value is written twice: \"\"), then upload the file again.",
        )
    if "expected after" in text:
        return NotCsv(
            f"{where} line {line}: text follows a closing quote inside a field ({text}).",
            "Quote the whole value and double any quote inside it (\"5\"\" disk\"), then upload the file again.",
        )
    if "field larger than field limit" in text:
        return NotCsv(
            f"{where} line {first_line}: a field is longer than {csv.field_size_limit():,} characters "
            "(often an unclosed quote that swallows the following lines).",
            "Check the quotes on that line, then upload the file again.",
        )
    if "new-line character seen in unquoted field" in text:
        return NotCsv(
            f"{where} line {line}: a carriage return (\\r) inside an unquoted field; the file uses "
            "old Mac (CR-only) line endings, or a value holds a stray line break.",
            "Save the file with LF or CRLF line endings (quote values that contain line breaks), "
            "then upload it again.",
        )
    if "NUL" in text:
        return NotCsv(f"{where} line {line} contains a NUL byte: the file is not plain text.",
                      "Remove the NUL bytes (or export the data again as a UTF-8 CSV) and upload it again.")
    return NotCsv(f"{where} is not valid CSV at line {line}: {text}.")


def validate_csv(chunks: Iterable[bytes], size: int, config: ModelConfig, where: str) -> DatasetSummary:
    """Stream the object once and raise a named error for the first problem found."""
    check_size(size, config, where)
    # strict: an unclosed quote is an error at the end of the file, not the rest of the file
    # silently read into one value (pandas, in the preprocess job, would then fail on it).
    reader = csv.reader(_text_lines(chunks, where), strict=True)
    last_line = 0
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise EmptyDataset(f"{where} has no header and no rows.")
        last_line = reader.line_num
        _check_header(header, config, where)
        expected = list(config.columns)
        width = len(config.columns)
        numeric = [i for i, c in enumerate(config.columns) if c in set(config.numeric_features)]
        present = [False] * width
        labels = _LabelCheck(config, where)
        seen_labels: dict[str, int] = {}  # class label text -> rows (each text checked once)
        unseen = width
        rows = missing_labels = 0
        for row in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if not row:
                continue
            line = first_line
            if len(row) != width:
                spans = ""
                if last_line > first_line:
                    spans = f" (a quoted value spans lines {first_line}-{last_line}; is a quote unbalanced?)"
                elif len(row) == 1 and (delimiter := next((d for d in ";\t|" if d in row[0]), None)):
                    spans = f" (it seems to use {delimiter!r} as the delimiter, where the header uses ',')"
                raise SchemaMismatch(
                    f"{where} line {line} has {len(row)} fields; expected {width}{spans}.",
                    f"Every line needs the {width} columns {','.join(expected)}; "
                    "fix the line and upload the file again.",
                )
            if [v.strip() for v in row] == expected:
                raise SchemaMismatch(
                    f"{where} line {line} repeats the header line; were several files concatenated?",
                    "Keep one header line, at the top, then upload the file again.",
                )
            rows += 1
            label = row[0].strip()
            if _is_missing(label):
                missing_labels += 1
            elif label in seen_labels:
                seen_labels[label] += 1
            elif labels.first(label, line):
                seen_labels[label] = 1
            for i in numeric:
                value = row[i].strip()
                if not _is_missing(value):
                    _check_number(value, config.columns[i], line, where)
            if unseen:  # once every column had a value, the rows need not be looked at for it
                for i, value in enumerate(row):
                    if not present[i] and not _is_missing(value.strip()):
                        present[i] = True
                        unseen -= 1
    except csv.Error as exc:
        raise _csv_problem(exc, last_line + 1, reader.line_num, where) from exc
    if rows == 0:
        raise EmptyDataset(f"{where} has a header but no data rows.")
    empty = [c for c, seen in zip(config.columns, present, strict=True) if not seen]
    if empty:
        raise AllNanColumn(f"{where}: column(s) {empty} have no values in any of {rows:,} rows.")
    if rows - missing_labels < config.min_rows:
        raise TooFewRows(
            f"{where} has {rows - missing_labels:,} labelled rows; model {config.model} needs "
            f"at least {config.min_rows:,}."
        )
    labels.finish(seen_labels)
    return DatasetSummary(rows=rows, columns=width, bytes=size, missing_labels=missing_labels)
