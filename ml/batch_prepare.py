"""Batch transform, first step: validate a month's CSVs and split the valid rows from the malformed.

Runs in SageMaker's scikit-learn 1.2-1 processing container (Python 3.9) and locally on the
project venv, unchanged. The standard library only, and ``autoloop_ml_common.py`` (shipped
beside it; standard library only too).

    python batch_prepare.py --input-dir /opt/ml/processing/input/data \
        --config /opt/ml/processing/input/config/churn.json --output-dir /opt/ml/processing/output

Every file under ``--input-dir`` (recursively; names starting with "." or "_" are markers and
are ignored; ``.gz`` files are read as gzip) must be UTF-8 CSV with a header naming the model's
feature columns and its ``batch.id_columns``, in any order; the label column may be present
and is dropped. A header with missing, unexpected or duplicated columns fails the job, naming
the file and the columns.

Policy for the rows (the month is read once, streaming, one line at a time):

- empty files, and files with a header and no rows, are skipped and listed;
- blank lines are ignored;
- a row is *malformed* when it is not UTF-8, has a different number of fields than the
  header, has an unbalanced quote (a quoted field across lines cannot be scored: the
  transform splits the input on line ends), or has a numeric feature that is neither empty
  nor a finite number (empty, ``nan``, ``NA``, ``null`` and ``None`` are missing values,
  which the model imputes). Malformed rows are skipped and counted, and written with their
  file, line number and reason to ``malformed/malformed.csv``. Whether the month may go on
  with them is decided after this job (``batch.max_malformed_fraction``).

Outputs under ``--output-dir`` (one file per input file that has valid rows, same name,
``.gz`` dropped):

- ``clean/<file>``: the valid rows, id columns then features in the model's order, no header
  (the transform's input; its InputFilter drops the id columns);
- ``monitor/<file>``: the valid rows' features, with a header (the data-quality check's input,
  in the layout of the training baseline);
- ``malformed/malformed.csv``: ``file,line,reason,row`` (only when a row is malformed);
- ``summary/summary.json``: counts per file and in total, the first malformed rows, the columns.

On failure: a one-line reason goes to ``$SM_OUTPUT_DIR/failure`` (default
``/opt/ml/output/failure``) and to stderr, and the exit code is 1.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os

from autoloop_ml_common import ScriptError, argument_parser, logger, read_config, run

MISSING = frozenset({"", "nan", "NaN", "NAN", "NA", "null", "None"})
EXAMPLES = 10


log = logger("batch_prepare")


def parse_args(argv=None):
    p = argument_parser(__doc__)
    p.add_argument("--input-dir", default="/opt/ml/processing/input/data")
    p.add_argument("--config", default="/opt/ml/processing/input/config/model.json")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    return p.parse_args(argv)


def load_config(path: str) -> dict:
    config = read_config(path)
    columns, label = config.get("columns"), config.get("label")
    if not isinstance(columns, list) or label not in columns or columns[0] != label:
        raise ScriptError(f"config {path}: 'columns' must list the label first")
    batch = config.get("batch") or {}
    return {
        "label": label,
        "features": [c for c in columns if c != label],
        "numeric": set(config.get("numeric_features") or []),
        "id_columns": list(batch.get("id_columns") or []),
    }


def find_files(input_dir: str) -> list:
    if not os.path.isdir(input_dir):
        raise ScriptError(f"input directory not found: {input_dir}")
    found = []
    for root, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            if not name.startswith((".", "_")):
                path = os.path.join(root, name)
                found.append((path, os.path.relpath(path, input_dir).replace(os.sep, "/")))
    return found


def open_lines(path: str):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def split_row(line: str) -> list:
    if '"' not in line:
        return line.split(",")
    if line.count('"') % 2:
        raise ValueError("unbalanced quotes (a quoted field across lines cannot be scored)")
    return next(csv.reader([line], strict=True))


def header_positions(rel: str, header: list, config: dict) -> list:
    """For each output column (id columns, then features), its position in this file's header."""
    wanted = config["id_columns"] + config["features"]
    names = [h.strip() for h in header]
    missing = [c for c in wanted if c not in names]
    unexpected = [n for n in names if n not in wanted and n != config["label"]]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if missing or unexpected or duplicated:
        parts = [f"{what} {cols}" for what, cols in
                 (("missing", missing), ("unexpected", unexpected), ("duplicated", duplicated)) if cols]
        raise ScriptError(
            f"BatchSchemaMismatch: {rel} has the wrong columns: {'; '.join(parts)}. Expected (any order): "
            f"{', '.join(wanted)}, optionally {config['label']}"
        )
    return [names.index(c) for c in wanted]


class Month:
    """Counts and the malformed-rows file of the whole month."""

    def __init__(self, out_dir: str, config: dict) -> None:
        self.out_dir = out_dir
        self.config = config
        self.files = []
        self.empty = []
        self.valid = 0
        self.malformed = 0
        self.examples = []
        self._bad = None
        self._bad_fh = None

    def reject(self, rel: str, line_no: int, reason: str, raw: str) -> None:
        self.malformed += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"file": rel, "line": line_no, "reason": reason})
        if self._bad is None:
            folder = os.path.join(self.out_dir, "malformed")
            os.makedirs(folder, exist_ok=True)
            self._bad_fh = open(os.path.join(folder, "malformed.csv"), "w", encoding="utf-8", newline="")
            self._bad = csv.writer(self._bad_fh, lineterminator="\n")
            self._bad.writerow(["file", "line", "reason", "row"])
        self._bad.writerow([rel, line_no, reason, raw[:10000]])

    def close(self) -> None:
        if self._bad_fh is not None:
            self._bad_fh.close()


class Outputs:
    """The clean and monitor files of one input file, opened on its first valid row."""

    def __init__(self, out_dir: str, name: str, features: list) -> None:
        self.paths = [os.path.join(out_dir, "clean", name), os.path.join(out_dir, "monitor", name)]
        self.features = features
        self.handles = []
        self.clean = self.monitor = None

    def write(self, row: list, n_ids: int) -> None:
        if self.clean is None:
            for path in self.paths:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self.handles.append(open(path, "w", encoding="utf-8", newline=""))
            self.clean = csv.writer(self.handles[0], lineterminator="\n")
            self.monitor = csv.writer(self.handles[1], lineterminator="\n")
            self.monitor.writerow(self.features)
        self.clean.writerow(row)
        self.monitor.writerow(row[n_ids:])

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def check_numbers(row: list, numeric_positions: list, names: list) -> str:
    for i in numeric_positions:
        value = row[i].strip()
        if value in MISSING:
            continue
        try:
            number = float(value)
        except ValueError:
            return f"{names[i]}: {row[i]!r} is not a number"
        if not math.isfinite(number):
            return f"{names[i]}: {row[i]!r} is not a finite number"
    return ""


def prepare_file(path: str, rel: str, month: Month) -> None:
    config = month.config
    out_name = rel[:-3] if rel.endswith(".gz") else rel
    with open_lines(path) as stream:
        first = stream.readline()
        if not first:
            month.empty.append(rel)
            return
        try:
            header_text = first.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            raise ScriptError(f"BatchSchemaMismatch: {rel} does not start with a UTF-8 header row") from None
        if not header_text.strip():
            raise ScriptError(f"BatchSchemaMismatch: {rel} has no header row (its first line is empty)")
        header = split_row(header_text)
        positions = header_positions(rel, header, config)
        n_ids = len(config["id_columns"])
        names = config["id_columns"] + config["features"]
        numeric = [k for k, c in enumerate(names) if c in config["numeric"]]
        width = len(header)
        outputs = Outputs(month.out_dir, out_name, config["features"])
        rows = valid = 0
        try:
            for line_no, data in enumerate(stream, start=2):
                try:
                    line = data.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    rows += 1
                    month.reject(rel, line_no, f"not UTF-8 ({exc.reason} at byte {exc.start})",
                                 data.decode("utf-8", "replace").rstrip("\r\n"))
                    continue
                if not line.strip():
                    continue
                rows += 1
                try:
                    fields = split_row(line)
                except (ValueError, csv.Error) as exc:
                    month.reject(rel, line_no, str(exc), line)
                    continue
                if len(fields) != width:
                    month.reject(rel, line_no, f"{len(fields)} fields, expected {width}", line)
                    continue
                row = [fields[p] for p in positions]
                problem = check_numbers(row, numeric, names)
                if problem:
                    month.reject(rel, line_no, problem, line)
                    continue
                outputs.write(row, n_ids)
                valid += 1
        finally:
            outputs.close()
    if rows == 0:
        month.empty.append(rel)
        return
    month.valid += valid
    month.files.append({"file": rel, "output": out_name if valid else None, "rows": rows, "valid": valid,
                        "malformed": rows - valid})
    log(f"{rel}: {rows} rows, {valid} valid, {rows - valid} malformed")


def main(argv=None) -> None:
    args = parse_args(argv)
    config = load_config(args.config)
    files = find_files(args.input_dir)
    outputs = {}
    for _, rel in files:
        name = rel[:-3] if rel.endswith(".gz") else rel
        if name in outputs:
            raise ScriptError(f"{outputs[name]} and {rel} would both be written as {name}; rename one")
        outputs[name] = rel
    month = Month(args.output_dir, config)
    try:
        for path, rel in files:
            prepare_file(path, rel, month)
    finally:
        month.close()
    summary = {
        "files": month.files,
        "empty_files": month.empty,
        "rows_valid": month.valid,
        "rows_malformed": month.malformed,
        "malformed_examples": month.examples,
        "columns": config["id_columns"] + config["features"],
    }
    folder = os.path.join(args.output_dir, "summary")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
    log(f"{len(month.files)} files with rows, {len(month.empty)} empty, {month.valid} valid rows, "
        f"{month.malformed} malformed")


if __name__ == "__main__":
    run(main)
