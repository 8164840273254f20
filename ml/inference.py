"""Serving handlers for SageMaker's scikit-learn container (endpoints and batch transform).

train.py copies this file to ``model.tar.gz:code/inference.py``. The container calls:

- ``model_fn(model_dir)``: loads ``model.joblib`` (the dict written by train.py).
- ``input_fn(input_data, content_type)``:
  ``text/csv``: rows without a header, features in training order (a first row equal to the
  feature names is skipped; empty fields are missing values);
  ``application/json``: ``{"instances": [[...], ...]}``, ``{"instances": [{...}, ...]}``,
  or a bare list of either (objects are keyed by feature name; extra keys are ignored;
  ``null`` is a missing value).
  Unsupported content types, wrong column counts, missing keys and non-numeric values in
  numeric features raise ``ValueError`` with a clear message.
- ``predict_fn(data, model)``, by the model's ``task`` (as train.py recorded it; binary for
  models that record none): binary, the probability of class 1 for each row (numpy array);
  regression, the predicted value (numpy array); multiclass, a dict with ``predictions`` (the
  most probable class of each row), ``probabilities`` (one list a row, in ``classes`` order)
  and ``classes``.
- ``output_fn(prediction, accept)``: ``text/csv`` one value a line (binary: the probability,
  regression: the value, multiclass: the class), or ``application/json``
  ``{"predictions": [...]}`` (the default for ``*/*`` or no accept), for multiclass with
  ``"probabilities"`` and ``"classes"`` beside it.

Batch transform sends mini-batches of up to ``MaxPayloadInMB`` (tens of thousands of rows), so
CSV is parsed by pandas' C reader when the payload is plain (ASCII, no quotes, no whitespace
around fields, every row with the same field count, no blank-looking row): the result is the
same DataFrame, value for value, as the row-by-row reader gives. Anything else, including
every error, goes through the row-by-row reader, which also writes the error messages.

Compatible with Python 3.9 / scikit-learn 1.2 / pandas 1.x. Standalone: it is the only file of
the model's ``code/`` folder, so it imports nothing from this repo (not autoloop_ml_common).
"""

from __future__ import annotations

import csv
import io
import json
import os

import joblib
import numpy as np
import pandas as pd

CSV = "text/csv"
JSON = "application/json"
_MISSING = ("", "nan", "NaN", "NA", "null", "None")


# The container calls model_fn once at start-up, before any request. input_fn gets no model
# but needs the feature names (header row, column count, JSON keys), so model_fn keeps the
# last loaded model here. If input_fn runs first anyway, parsing waits for predict_fn.
_LOADED = {}


def model_fn(model_dir):
    """Load the dict saved by train.py from ``model_dir/model.joblib``."""
    path = os.path.join(model_dir, "model.joblib")
    if not os.path.isfile(path):
        raise ValueError(f"model.joblib not found in {model_dir}")
    model = joblib.load(path)
    if not isinstance(model, dict) or "pipeline" not in model or "features" not in model:
        raise ValueError(f"{path} is not a model saved by train.py (a dict with 'pipeline')")
    _LOADED["model"] = model
    return model


class _Deferred:
    """A request body kept as text until predict_fn has the model."""

    def __init__(self, media, text):
        self.media = media
        self.text = text


def _media_type(value):
    return (value or "").split(";")[0].strip().lower()


def _text(input_data):
    if isinstance(input_data, (bytes, bytearray)):
        try:
            return bytes(input_data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"request body is not valid UTF-8: {exc}") from None
    if isinstance(input_data, str):
        return input_data[1:] if input_data.startswith("\ufeff") else input_data
    raise ValueError(f"unsupported request body type {type(input_data).__name__}")


def _rows_from_csv(text, features):
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text))]
    rows = [row for row in rows if any(cell != "" for cell in row)]
    if rows and rows[0] == list(features):
        rows = rows[1:]
    for i, row in enumerate(rows, start=1):
        if len(row) != len(features):
            hint = ""
            if len(row) == len(features) + 1:
                hint = " (if the first column is the label, drop it)"
            raise ValueError(
                f"text/csv row {i} has {len(row)} columns, expected {len(features)}: "
                f"{', '.join(features)}{hint}"
            )
    return rows


def _rows_from_json(text, features):
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"application/json body is not valid JSON: {exc}") from None
    if isinstance(body, dict):
        if "instances" in body:
            items = body["instances"]
        elif all(name in body for name in features):
            items = [body]
        else:
            raise ValueError(
                'application/json body must be {"instances": [...]} or a list of rows'
            )
    else:
        items = body
    if not isinstance(items, list):
        raise ValueError('"instances" must be a list of rows (lists or objects)')
    rows = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, dict):
            missing = [name for name in features if name not in item]
            if missing:
                raise ValueError(f"instance {i} lacks feature(s): {', '.join(missing)}")
            rows.append([item[name] for name in features])
        elif isinstance(item, list):
            if len(item) != len(features):
                raise ValueError(
                    f"instance {i} has {len(item)} values, expected {len(features)}: "
                    f"{', '.join(features)}"
                )
            rows.append(item)
        else:
            raise ValueError(f"instance {i} must be a list or an object, got {type(item).__name__}")
    return rows


def _is_missing(value):
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in _MISSING


def _floats(values, name):
    try:
        return np.array(values, dtype=float)
    except (TypeError, ValueError):
        pass
    for i, value in enumerate(values, start=1):
        try:
            float(value)
        except (TypeError, ValueError):
            raise ValueError(f"row {i}: feature {name} must be a number, got {value!r}") from None
    raise ValueError(f"feature {name} has values that are not numbers")


def _numeric_features(model):
    if model.get("numeric_features") is not None:
        return list(model["numeric_features"])
    # Older model dicts: read the columns of the "numeric" branch of the ColumnTransformer.
    try:
        transformer = model["pipeline"].named_steps["features"]
        for name, _, cols in transformer.transformers_:
            if name == "numeric":
                return list(cols)
    except (AttributeError, KeyError, TypeError):
        pass
    return []


def _frame(rows, model):
    """A DataFrame in training layout: numeric features as floats, the rest as objects."""
    features = list(model["features"])
    numeric = set(_numeric_features(model))
    columns = {}
    for j, name in enumerate(features):
        values = [np.nan if _is_missing(row[j]) else row[j] for row in rows]
        if name in numeric:
            columns[name] = _floats(values, name)
        else:
            columns[name] = pd.Series(
                [v if _is_missing(v) else str(v) for v in values], dtype=object
            )
    return pd.DataFrame(columns, columns=features)


def input_fn(input_data, content_type):
    """Parse a request body (bytes or str) into a DataFrame of features."""
    media = _media_type(content_type)
    if media not in (CSV, JSON):
        raise ValueError(f"unsupported content type {content_type!r}; use {CSV} or {JSON}")
    text = _text(input_data)
    model = _LOADED.get("model")
    if model is None:
        return _Deferred(media, text)
    return _parse(media, text, model)


# Spaces, quotes and control characters other than "\n" (among them the whitespace str.strip()
# removes and "\r"): with none in the text, and the text ASCII, splitting on "," and "\n" is
# exactly what csv.reader does, and no field needs stripping.
_NOT_PLAIN = bytes(range(0x0A)) + bytes(range(0x0B, 0x20)) + b'" '
_PANDAS_MAJOR = int(pd.__version__.split(".")[0])


def _fast_csv_frame(text, model):
    """The DataFrame ``_frame(_rows_from_csv(text))`` gives, read by pandas' C parser; None
    where that cannot be guaranteed cheaply (the caller then takes the row-by-row path)."""
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    if len(raw.translate(None, _NOT_PLAIN)) != len(raw):
        return None
    lowered = raw.lower()
    if b"true" in lowered or b"false" in lowered:
        return None  # pandas' float reader takes True/False as 1/0; Python's float() refuses them
    features = list(model["features"])
    width = len(features)
    body = text.strip("\n")
    header = ",".join(features)
    if body == header:
        return None
    if body.startswith(header + "\n"):
        body = body[len(header) + 1 :]
    if not body or "\n\n" in body:
        return None  # blank lines in the middle: the row numbers in errors would shift
    lines = body.count("\n") + 1
    # pandas refuses a row longer than its first and pads a shorter one, so with the first row
    # at `width` fields (checked below), equal totals mean every row has exactly `width` fields.
    if body.count(",") != lines * (width - 1):
        return None
    if width > 1 and "\n" + "," * (width - 1) + "\n" in "\n" + body + "\n":
        return None  # a row of empty fields, which csv.reader skips
    numeric = set(_numeric_features(model))
    options = {}
    if _PANDAS_MAJOR < 3:
        options["float_precision"] = "round_trip"  # Python's own strtod; pandas 3's is exact
    try:
        frame = pd.read_csv(
            io.StringIO(body),
            header=None,
            dtype={j: (float if name in numeric else object) for j, name in enumerate(features)},
            na_values=list(_MISSING),
            keep_default_na=False,
            skip_blank_lines=False,
            engine="c",
            **options,
        )
    except (ValueError, TypeError):  # a value that is not a number: the row-by-row path says which
        return None
    if len(frame) != lines or frame.shape[1] != width:
        return None
    frame.columns = features
    return frame


def _parse(media, text, model):
    features = list(model["features"])
    if media == CSV:
        frame = _fast_csv_frame(text, model)
        if frame is not None:
            return frame
    rows = _rows_from_csv(text, features) if media == CSV else _rows_from_json(text, features)
    if not rows:
        raise ValueError("the request has no rows")
    return _frame(rows, model)


def _python(value):
    """A numpy scalar as the Python value json and csv write (1, not 1.0, for an integer class)."""
    return value.item() if isinstance(value, np.generic) else value


def predict_fn(input_data, model):
    """One prediction per input row, by the model's task (see the module docstring)."""
    if isinstance(input_data, _Deferred):
        input_data = _parse(input_data.media, input_data.text, model)
    pipeline = model["pipeline"]
    features = list(model["features"])
    task = model.get("task", "binary")
    if task == "regression":
        return np.asarray(pipeline.predict(input_data[features]), dtype=float)
    classes = list(pipeline.classes_)
    probabilities = pipeline.predict_proba(input_data[features])
    if task == "binary":
        return probabilities[:, classes.index(1)]
    best = np.argmax(probabilities, axis=1)
    return {
        "predictions": [_python(classes[i]) for i in best],
        "probabilities": np.round(probabilities, 6).tolist(),
        "classes": [_python(c) for c in classes],
    }


def output_fn(prediction, accept):
    """Serialize the predictions: CSV one a line, or JSON {"predictions": [...]} (multiclass:
    with "probabilities" and "classes")."""
    if isinstance(prediction, dict):
        values = list(prediction["predictions"])
        document = prediction
        line = str
    else:
        values = np.asarray(prediction, dtype=float).ravel().tolist()  # Python floats
        document = {"predictions": values}
        line = repr
    for part in (accept or "").split(","):
        media = _media_type(part)
        if media == CSV:
            return "\n".join(map(line, values)) + "\n" if values else ""
        if media in (JSON, "*/*", "application/*", ""):
            return json.dumps(document)
    raise ValueError(f"unsupported accept type {accept!r}; use {CSV} or {JSON}")
