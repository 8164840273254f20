"""Validate an incoming CSV against its model config, streaming, before any job starts."""

from __future__ import annotations

import codecs
import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from autoloop.config import ModelConfig
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
)

MISSING = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"})
LABEL_VALUES = frozenset({"0", "1", "0.0", "1.0"})
_SNIFF_BYTES = 4096


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
            "Split the file, or raise max_bytes in the model config.",
        )


def _text_lines(chunks: Iterable[bytes], where: str) -> Iterator[str]:
    """Decode UTF-8 (a BOM is dropped) and yield lines with their line endings."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    seen = 0
    for chunk in chunks:
        if seen < _SNIFF_BYTES and b"\x00" in chunk[: _SNIFF_BYTES - seen]:
            raise NotCsv(f"{where} contains NUL bytes: it is binary, not CSV.")
        seen += len(chunk)
        try:
            pending += decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise NotCsv(f"{where} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line + "\n"
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise NotCsv(f"{where} ends in the middle of a UTF-8 character.") from exc
    if pending:
        yield pending


def _check_header(header: list[str], config: ModelConfig, where: str) -> None:
    expected = list(config.columns)
    header = [h.strip() for h in header]
    if header == expected:
        return
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
        raise SchemaMismatch(
            f"{where} does not match the schema of model {config.model}: "
            f"missing columns {missing}, unexpected columns {extra}.",
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


def _is_number(value: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return not math.isinf(number)


def validate_csv(chunks: Iterable[bytes], size: int, config: ModelConfig, where: str) -> DatasetSummary:
    """Stream the object once and raise a named error for the first problem found."""
    check_size(size, config, where)
    reader = csv.reader(_text_lines(chunks, where))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise EmptyDataset(f"{where} has no header and no rows.")
        _check_header(header, config, where)
        width = len(config.columns)
        numeric = [i for i, c in enumerate(config.columns) if c in set(config.numeric_features)]
        present = [False] * width
        rows = missing_labels = 0
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != width:
                raise SchemaMismatch(f"{where} line {line} has {len(row)} fields; expected {width}.")
            rows += 1
            label = row[0].strip()
            if label in MISSING:
                missing_labels += 1
            elif label not in LABEL_VALUES:
                raise InvalidLabels(
                    f"{where} line {line}: label {config.label!r} is {label[:40]!r}; expected 0 or 1."
                )
            for i in numeric:
                value = row[i].strip()
                if value in MISSING:
                    continue
                if not _is_number(value):
                    raise NonNumericValue(
                        f"{where} line {line}: column {config.columns[i]!r} is numeric "
                        f"but holds {value[:40]!r}."
                    )
            for i, value in enumerate(row):
                if not present[i] and value.strip() not in MISSING:
                    present[i] = True
    except csv.Error as exc:
        raise NotCsv(f"{where} is not valid CSV at line {reader.line_num}: {exc}.") from exc
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
    return DatasetSummary(rows=rows, columns=width, bytes=size, missing_labels=missing_labels)
