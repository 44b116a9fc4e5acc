"""Reading the feature list that comes with an imported XGBoost model.

The list is untrusted user input: a JSON array of names (or an object with a ``features`` or
``feature_names`` array), or a text file with one name a line (blank lines and ``#`` comments
ignored; a single line may be comma-separated). Names are checked again by
:func:`fraudlens.registry.import_xgboost`, which compares them with the model file.
"""

from __future__ import annotations

import json

from fraudlens.errors import ModelError

MAX_BYTES = 1 << 20
MAX_FEATURES = 10_000
MAX_NAME = 200


def parse_feature_list(data: bytes, file_name: str = "features") -> list[str]:
    """The feature names in ``data``; ModelError naming the file (and line) when it is not a list."""
    if len(data) > MAX_BYTES:
        raise ModelError(f"{file_name} is {len(data):,} bytes; a feature list may be at most {MAX_BYTES:,}.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{file_name} is not UTF-8 text (byte {exc.start}).") from exc
    stripped = text.strip()
    if not stripped:
        raise ModelError(f"{file_name} is empty: it must list the model's features, one a line or as JSON.")
    if stripped[0] in "[{":
        names = _from_json(stripped, file_name)
    else:
        names = _from_lines(text, file_name)
    if not names:
        raise ModelError(f"{file_name} lists no feature names.")
    if len(names) > MAX_FEATURES:
        raise ModelError(f"{file_name} lists {len(names):,} features; at most {MAX_FEATURES:,} are accepted.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelError(f"{file_name} lists {', '.join(map(repr, duplicates[:5]))} more than once.")
    return names


def _from_json(text: str, file_name: str) -> list[str]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{file_name} is not valid JSON: {exc}.") from exc
    if isinstance(value, dict):
        key = next((k for k in ("features", "feature_names") if k in value), None)
        if key is None:
            raise ModelError(f"{file_name} is a JSON object without a 'features' or 'feature_names' list.")
        value = value[key]
    if not isinstance(value, list):
        raise ModelError(f"{file_name} must hold a JSON list of feature names. Got {type(value).__name__} instead.")
    for position, item in enumerate(value, 1):
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_NAME:
            raise ModelError(f"{file_name}: item {position} must be a non-empty name of at most {MAX_NAME} "
                             f"characters. Got {item!r:.60} instead.")
    return [item.strip() for item in value]


def _from_lines(text: str, file_name: str) -> list[str]:
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if len(lines) == 1 and "," in lines[0][1]:
        number, line = lines[0]
        lines = [(number, part.strip()) for part in line.split(",") if part.strip()]
    for number, name in lines:
        if len(name) > MAX_NAME or any(ch in name for ch in "\t\"'"):
            raise ModelError(f"{file_name}, line {number}: {name!r:.60} is not a feature name "
                             f"(at most {MAX_NAME} characters, no tabs or quotes).")
    return [name for _, name in lines]
