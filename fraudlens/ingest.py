"""Ingest: messy source files onto the canonical schema, into a dataset, safely.

Row problems (bad date, bad amount, missing required value, duplicate id, unparseable line)
send the row to the dataset's rejects with file, line, column and reason; the rest loads, and
loaded + rejected == rows read. File problems raise IngestError and store nothing.

Everything streams through DuckDB. New parts are written into a staging folder, fsynced, renamed
into place and only then published by an atomic manifest swap, so a process killed at any point
leaves the previous dataset intact.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fraudlens import datasets, locks, quality
from fraudlens.config import Settings, secret, settings
from fraudlens.errors import FraudLensError, IngestError, SchemaError
from fraudlens.schema import (
    CANONICAL,
    LABEL,
    LABEL_FALSE,
    LABEL_TRUE,
    LABEL_UNKNOWN,
    REQUIRED,
    TYPES,
    check_dataset_name,
    check_mapping,
    detect_mapping,
    extra_column_name,
    normalise_header,
    quote_ident,
)
from fraudlens.store import DatabaseError, connect, stream_to_parquet

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
MODES = ("create", "append", "replace")
SAMPLE_BYTES = 1 << 20
PREVIEW_ROWS = 20

# Tried in order; day-first before month-first because Peruvian exports write 31/01/2025.
DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y%m%d%H%M%S", "%Y%m%d",
)
ISO = "iso"
STEP_HOURS = "step-hours"
EPOCH_S = "epoch-seconds"
EPOCH_MS = "epoch-milliseconds"
NATIVE = "native"
STEP_ORIGIN = "2025-01-01 00:00:00"


@dataclass(frozen=True)
class SourceInfo:
    """What ingest found out about a file before loading it."""

    path: Path
    format: str  # csv | parquet | jsonl
    compression: str | None
    encoding: str | None
    delimiter: str | None
    headers: list[str]
    types: dict[str, str]
    mapping: dict[str, str]
    preview: object = None  # pandas DataFrame of the first rows, as text


@dataclass(frozen=True)
class IngestResult:
    dataset: str
    ingest_id: str
    mode: str
    files: list[str]
    rows_read: int
    loaded: int
    rejected: int
    rejects_by_reason: dict[str, int]
    rejects_file: str | None
    version: int
    seconds: float
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- sniffing


def _open_head(path: Path, compression: str | None) -> bytes:
    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(SAMPLE_BYTES)
    except (OSError, EOFError) as exc:
        raise IngestError(f"{path.name}: the file cannot be read ({exc}).") from exc


def _detect_format(path: Path) -> tuple[str, str | None]:
    name = path.name.lower()
    compression = "gzip" if name.endswith(".gz") else None
    stem = name[:-3] if compression else name
    if stem.endswith(".parquet") or stem.endswith(".pq"):
        return "parquet", compression
    if stem.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl", compression
    if stem.endswith((".csv", ".txt", ".tsv")):
        return "csv", compression
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return "parquet", None
    if magic[:2] == b"\x1f\x8b":
        return "csv", "gzip"
    raise IngestError(
        f"{path.name}: unknown file type. Use CSV (.csv, .csv.gz), Parquet (.parquet) "
        "or JSON Lines (.jsonl)."
    )


def _detect_encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8"  # DuckDB skips the BOM itself
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample boundary is still UTF-8.
        if exc.start >= len(head) - 3:
            return "utf-8"
        return "latin-1"


def _detect_delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in ",;\t|"}
        return max(counts, key=counts.get)


def _source_sql(info: SourceInfo, rejects_table: str, numbered: bool = True) -> tuple[str, dict]:
    """SQL reading ``info.path`` with every column as it should be parsed.

    Every row carries ``_row``, its number in the file, which rejects' line numbers come from.
    A CSV read with ``numbered=False`` leaves it NULL, to be taken from the row's place in the
    staged table (``_stage_all``): numbering rows as they are read would serialise the scan.
    JSON Lines number their physical ``_line`` because blank lines are skipped.
    """
    params = {"path": str(info.path)}
    if info.format == "parquet":
        return (
            "SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _row "
            "FROM read_parquet($path, file_row_number = true)",
            params,
        )
    if info.format == "jsonl":
        keys = ", ".join(
            f"CASE WHEN json_valid(_json) THEN json_extract_string(_json, "
            f"{_sql_literal('$.' + json.dumps(h))}) END AS {quote_ident(h)}"
            for h in info.headers
        )
        return (
            f"SELECT {keys}, _json, _line, _line AS _row FROM ("
            "SELECT _json, row_number() OVER () AS _line FROM read_csv($path, "
            "columns = {'_json': 'VARCHAR'}, header = false, delim = chr(1), quote = '', "
            "escape = '', auto_detect = false, compression = $compression))",
            {**params, "compression": info.compression or "none"},
        )
    params.update(
        {"delim": info.delimiter, "encoding": info.encoding, "compression": info.compression or "none"}
    )
    # A streaming window keeps file order; it costs the scan its second thread (half its speed).
    row = "row_number() OVER ()" if numbered else "CAST(NULL AS BIGINT)"
    return (
        f"SELECT *, {row} AS _row FROM read_csv($path, all_varchar = true, "
        "header = true, delim = $delim, quote = '\"', escape = '\"', encoding = $encoding, "
        "compression = $compression, store_rejects = true, "
        f"rejects_table = '{rejects_table}', rejects_scan = '{rejects_table}_scan', "
        "max_line_size = 10000000)",
        params,
    )


# Columns the source SQL adds to a file's own.
INTERNAL = ("_line", "_json", "_row")


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def inspect(path: str | Path, *, cfg: Settings | None = None, mapping: dict | None = None,
            complete_mapping: bool = False) -> SourceInfo:
    """Detect format, encoding, delimiter, headers and the column mapping of one file.

    Raises IngestError for a file that cannot be ingested at all.
    """
    cfg = cfg or settings()
    path = Path(path).resolve()
    if not path.is_file():
        raise IngestError(f"{path.name}: no such file ({path}).")
    if path.stat().st_size == 0:
        raise IngestError(f"{path.name}: the file is empty.")
    fmt, compression = _detect_format(path)
    encoding = delimiter = None
    headers: list[str] = []
    if fmt == "csv":
        head = _open_head(path, compression)
        if not head.strip():
            raise IngestError(f"{path.name}: the file is empty.")
        encoding = _detect_encoding(head)
        text = head.decode("utf-16" if encoding == "utf-16" else encoding, errors="replace")
        delimiter = _detect_delimiter(text.lstrip("\ufeff"))
    con = connect(cfg, readable=[path])
    try:
        if fmt == "jsonl":
            headers = _json_keys(con, path, compression)
            info = SourceInfo(path, fmt, compression, None, None, headers, {}, {})
        else:
            info = SourceInfo(path, fmt, compression, encoding, delimiter, [], {}, {})
        sql, params = _source_sql(info, "_sniff_rejects")
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM ({sql})", params).fetchall()
            preview = con.execute(f"SELECT * FROM ({sql}) LIMIT {PREVIEW_ROWS}", params).df()
        except DatabaseError as exc:
            raise IngestError(f"{path.name}: the file cannot be read as {fmt.upper()} ({_first_line(exc)}).") from exc
    finally:
        con.close()
    types = {row[0]: row[1] for row in described if row[0] not in INTERNAL}
    headers = list(types)
    if not headers:
        raise IngestError(f"{path.name}: the file has no columns.")
    if preview.empty:
        raise IngestError(f"{path.name}: the file has a header but no rows.")
    preview = preview.drop(columns=[c for c in INTERNAL if c in preview.columns])
    if not mapping:
        chosen = detect_mapping(headers)
    elif complete_mapping:  # a mapping file naming a few columns: detect the rest by name
        chosen = _merge_mapping(detect_mapping(headers), mapping)
    else:  # the full mapping the user reviewed: a column left out stays unmapped
        chosen = dict(mapping)
    return SourceInfo(path, fmt, compression, encoding, delimiter, headers, types, chosen, preview)


def _merge_mapping(detected: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """The given mapping wins; canonical columns it leaves out keep their detected source, unless
    that source column is already used by the given mapping (a partial mapping drops nothing)."""
    used = set(given.values())
    kept = {c: h for c, h in detected.items() if c not in given and h not in used}
    return {**kept, **given}


def _json_keys(con, path: Path, compression: str | None) -> list[str]:
    sql = (
        "SELECT DISTINCT unnest(json_keys(_json)) AS k FROM (SELECT _json FROM read_csv($path, "
        "columns = {'_json': 'VARCHAR'}, header = false, delim = chr(1), quote = '', escape = '', "
        "auto_detect = false, compression = $compression) WHERE json_valid(_json) LIMIT 10000)"
    )
    try:
        rows = con.execute(sql, {"path": str(path), "compression": compression or "none"}).fetchall()
    except DatabaseError as exc:
        raise IngestError(f"{path.name}: the file cannot be read as JSON Lines ({_first_line(exc)}).") from exc
    if not rows:
        raise IngestError(f"{path.name}: no valid JSON object found on the first lines.")
    return sorted(r[0] for r in rows)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]


# ---------------------------------------------------------------------------- conversion


def _sample(con, source_sql: str, params: dict, column: str, n: int = 2000) -> list[str]:
    col = quote_ident(column)
    rows = con.execute(
        f"SELECT CAST({col} AS VARCHAR) FROM ({source_sql}) WHERE {col} IS NOT NULL "
        f"AND trim(CAST({col} AS VARCHAR)) <> '' LIMIT {n}",
        params,
    ).fetchall()
    return [r[0] for r in rows]


def _choose_date_format(con, values: list[str], header: str) -> str:
    """The parser that reads most of the sampled values."""
    if not values:
        return ISO
    if all(re.fullmatch(r"-?\d+(\.0+)?", v.strip()) for v in values):
        if normalise_header(header) == "step":
            return STEP_HOURS
        # 20250103 and 20250103101500 are dates; as epoch seconds they would land in 1970.
        for fmt, width in (("%Y%m%d", 8), ("%Y%m%d%H%M%S", 14)):
            if all(len(v.strip()) == width and v.strip()[:2] in ("19", "20") for v in values):
                return fmt
        biggest = max(abs(float(v)) for v in values)
        return EPOCH_MS if biggest > 1e11 else EPOCH_S
    candidates = [ISO, *DATE_FORMATS]
    scores = []
    for fmt in candidates:
        parsed = con.execute(
            f"SELECT count({_parse_ts_expr('v', fmt)}) FROM unnest($vals) t(v)", {"vals": values}
        ).fetchone()[0]
        scores.append(parsed)
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return candidates[best]


def _describe_format(fmt: str) -> str:
    """A date format in words a supervisor reads: ``%d/%m/%Y %H:%M`` -> ``day/month/year hour:minute``."""
    named = {ISO: "ISO 8601 (2025-01-31 14:05, offsets honoured)", STEP_HOURS: f"hours since {STEP_ORIGIN}",
             EPOCH_S: "seconds since 1970-01-01 UTC", EPOCH_MS: "milliseconds since 1970-01-01 UTC"}
    if fmt in named:
        return named[fmt]
    words = {"%d": "day", "%m": "month", "%Y": "year", "%H": "hour", "%M": "minute", "%S": "second"}
    for code, word in words.items():
        fmt = fmt.replace(code, word)
    return fmt


def _parse_ts_expr(col: str, fmt: str) -> str:
    """TIMESTAMPTZ expression; naive values are read in the session time zone (the dataset's)."""
    text = f"trim(CAST({col} AS VARCHAR))"
    if fmt == ISO:
        return (f"coalesce(TRY_CAST(CAST({col} AS VARCHAR) AS TIMESTAMPTZ), "
                f"TRY_CAST(replace({text}, 'Z', '+00:00') AS TIMESTAMPTZ))")
    if fmt == STEP_HOURS:
        return (f"(TIMESTAMPTZ '{STEP_ORIGIN}' + "
                f"to_hours(TRY_CAST(TRY_CAST({text} AS DOUBLE) AS BIGINT)))")
    if fmt == EPOCH_S:
        return f"to_timestamp(TRY_CAST({text} AS DOUBLE))"
    if fmt == EPOCH_MS:
        return f"to_timestamp(TRY_CAST({text} AS DOUBLE) / 1000.0)"
    return f"CAST(try_strptime({text}, {_sql_literal(fmt)}) AS TIMESTAMPTZ)"


def _decimal_comma(values: list[str]) -> bool:
    """True when most numbers write the decimal part after a comma (``1.234,56``)."""
    comma_last = dot_last = 0
    for v in values:
        digits = v.strip()
        i, j = digits.rfind(","), digits.rfind(".")
        if i > j and len(digits) - i - 1 != 3:
            comma_last += 1
        elif j > i and (i >= 0 or len(digits) - j - 1 != 3):
            dot_last += 1
        elif i > j and j >= 0:
            comma_last += 1
    return comma_last > dot_last


def _number_expr(col: str, decimal_comma: bool) -> str:
    text = (f"regexp_replace(trim(CAST({col} AS VARCHAR)), "
            r"'^(S/\.?|PEN)\s*|\s+', '', 'gi')")
    if decimal_comma:
        text = f"replace(replace({text}, '.', ''), ',', '.')"
    else:
        text = f"replace({text}, ',', '')"
    # No NULLIF: it would name the cleaned text twice, and DuckDB would then clean every row
    # ahead of the coalesce below, not only the ones the direct cast fails on. '' casts to NULL.
    slow = f"TRY_CAST({text} AS DOUBLE)"
    if decimal_comma:
        return slow
    # Most values are plain numbers: cast them directly; clean up only the ones that fail.
    return f"coalesce(TRY_CAST(CAST({col} AS VARCHAR) AS DOUBLE), {slow})"


INTEGERS = ("BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER",
            "USMALLINT", "UTINYINT")
NUMBERS = INTEGERS + ("DOUBLE", "FLOAT", "REAL")


def _is_number(src_type: str) -> bool:
    return src_type in NUMBERS or src_type.startswith("DECIMAL")


def _is_blank(col: str, src_type: str = "VARCHAR") -> str:
    # Only text can be blank; formatting a number or a time to test it costs a cast per row.
    if _is_number(src_type) or src_type.startswith(("TIMESTAMP", "DATE", "BOOLEAN")):
        return f"({col} IS NULL)"
    return f"({col} IS NULL OR trim(CAST({col} AS VARCHAR)) = '')"


@dataclass
class _Plan:
    """Per canonical column: the converted value and the row problem it may raise."""

    select: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)
    checks: list[tuple[str, str, str, str]] = field(default_factory=list)  # cond, column, reason, raw
    notes: list[str] = field(default_factory=list)


def _plan(con, info: SourceInfo, source_sql: str, params: dict, key: str | None, tz: str) -> _Plan:
    plan = _Plan()
    mapping = info.mapping
    for canonical in CANONICAL:
        target = quote_ident(canonical)
        source = mapping.get(canonical)
        if source is None and canonical == "transaction_id":
            stem = _sql_literal(info.path.name.split(".")[0] + "-")
            plan.select.append(f"{stem} || CAST(src._row AS VARCHAR) AS {target}")
            plan.notes.append("no transaction id column: ids generated as <file>-<row>")
            continue
        if source is None:
            plan.select.append(f"CAST(NULL AS {TYPES[canonical]}) AS {target}")
            continue
        col = "src." + quote_ident(source)
        src_type = info.types.get(source, "VARCHAR").upper()
        ref = quote_ident(f"__v_{canonical}")
        value, checks = _convert(con, canonical, col, ref, source, src_type, source_sql, params, plan, key)
        # Computed once in an inner query; the checks and the output refer to it by name.
        plan.inner.append(f"{value} AS {ref}")
        plan.select.append(f"src.{ref} AS {target}")
        for cond, reason in checks:
            plan.checks.append((cond, canonical, reason, f"CAST({col} AS VARCHAR)"))
    return plan


def _convert(con, canonical, col, ref, source, src_type, source_sql, params, plan, key):
    """(value expression, [(problem condition, reason)]) for one mapped column."""
    required = canonical in REQUIRED
    blank = _is_blank(col, src_type)
    checks: list[tuple[str, str]] = []
    if required:
        checks.append((blank, f"missing required value ({source})"))
    if canonical == "transaction_datetime":
        if src_type.startswith("TIMESTAMP WITH TIME ZONE"):
            value = f"timezone('UTC', {col})"
        elif src_type.startswith(("TIMESTAMP", "DATE")):
            value = f"timezone('UTC', timezone(current_setting('TimeZone'), CAST({col} AS TIMESTAMP)))"
        else:
            fmt = _choose_date_format(con, _sample(con, source_sql, params, source), source)
            plan.notes.append(f"{source}: dates read as {_describe_format(fmt)}")
            value = f"timezone('UTC', {_parse_ts_expr(col, fmt)})"
        checks.append((f"NOT {blank} AND {ref} IS NULL", f"bad date ({source})"))
        return value, checks
    if TYPES[canonical] == "DOUBLE":
        if _is_number(src_type):
            value = f"CAST({col} AS DOUBLE)"
        else:
            comma = _decimal_comma(_sample(con, source_sql, params, source))
            if comma:
                plan.notes.append(f"{source}: decimal comma")
            value = _number_expr(col, comma)
        checks.append((f"NOT {blank} AND {ref} IS NULL", f"bad number ({source}): not a number"))
        checks.append((f"NOT isfinite({ref})", f"bad number ({source}): not finite"))
        if canonical == "transaction_amount":
            checks.append((f"{ref} < 0", f"bad amount ({source}): negative"))
        return value, checks
    if TYPES[canonical] == "INTEGER" and _is_number(src_type):
        value = f"CAST({col} AS INTEGER)" if src_type in INTEGERS else f"CAST(round({col}) AS INTEGER)"
        return value, checks
    if TYPES[canonical] == "INTEGER":
        value = f"CAST(round(TRY_CAST(trim(CAST({col} AS VARCHAR)) AS DOUBLE)) AS INTEGER)"
        checks.append((f"NOT {blank} AND TRY_CAST(trim(CAST({col} AS VARCHAR)) AS DOUBLE) IS NULL",
                       f"bad integer ({source})"))
        return value, checks
    if canonical == LABEL and src_type == "BOOLEAN":
        return col, checks
    if canonical == LABEL:
        text = f"lower(trim(CAST({col} AS VARCHAR)))"
        unknown = ", ".join(_sql_literal(v) for v in LABEL_UNKNOWN)
        trues = ", ".join(_sql_literal(v) for v in LABEL_TRUE)
        falses = ", ".join(_sql_literal(v) for v in LABEL_FALSE)
        # Most rows are legitimate: test those words first. A row is bad only when its value is
        # neither, so the check reads the converted value before comparing any more words.
        value = (f"CASE WHEN {text} IN ({falses}) THEN false WHEN {text} IN ({trues}) THEN true "
                 f"ELSE NULL END")
        checks.append((f"NOT {blank} AND {ref} IS NULL AND {text} NOT IN ({unknown})",
                       f"bad label ({source}): not one of 1/0, true/false, yes/no, fraud/legit"))
        return value, checks
    value = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    if key is not None and canonical in ("account_id", "ip_address"):
        value = _pseudonym_expr(value)
    return value, checks


def _pseudonym_expr(value: str) -> str:
    # Nested keyed SHA-256 (the HMAC shape): the outer hash stops length extension.
    inner = f"sha256($key_inner || {value})"
    return f"CASE WHEN {value} IS NULL THEN NULL ELSE 'p_' || left(sha256($key_outer || {inner}), 20) END"


def _pseudonym_keys() -> dict[str, str]:
    key = secret("pseudonymisation_key")
    if not key:
        raise IngestError(
            "Pseudonymisation needs a key: set FRAUDLENS_PSEUDONYMISATION_KEY or "
            "pseudonymisation_key under [fraudlens] in .streamlit/secrets.toml."
        )
    return {"key_inner": key + ":inner", "key_outer": key + ":outer"}


# ---------------------------------------------------------------------------- the ingest


def ingest(
    paths: list[str | Path] | str | Path,
    dataset: str,
    *,
    mapping: dict[str, str] | None = None,
    complete_mapping: bool = False,
    mode: str = "create",
    strict: bool = False,
    pseudonymise: bool = False,
    progress: Progress | None = None,
    cfg: Settings | None = None,
) -> IngestResult:
    """Load source files into ``dataset``.

    Parameters
    ----------
    paths : one or more CSV / CSV.gz / Parquet / JSONL files.
    mode : ``create`` (the dataset must not exist), ``append`` or ``replace``.
    mapping : ``{canonical: source column}``; detected by synonyms when omitted.
    complete_mapping : detect by name the canonical columns ``mapping`` leaves out (a mapping file).
    strict : fail the whole ingest on any rejected row.
    pseudonymise : store keyed hashes of account_id and ip_address instead of raw values.
    """
    started = time.perf_counter()
    cfg = cfg or settings()
    home = Path(cfg.home)
    report = progress or (lambda _f, _m: None)
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise IngestError("No file given to ingest.")
    try:
        check_dataset_name(dataset)
    except SchemaError as exc:
        raise IngestError(str(exc)) from None
    if mode not in MODES:
        raise IngestError(f"The 'mode' parameter must be one of {MODES}. Got {mode!r} instead.")
    home.mkdir(parents=True, exist_ok=True)
    with locks.held(home, dataset):
        previous = datasets.read(home, dataset) if datasets.exists(home, dataset) else None
        if previous is not None and mode == "create":
            raise IngestError(
                f"Dataset '{dataset}' already exists ({previous.rows:,} rows). "
                "Use --append to add rows or --replace to swap the whole dataset."
            )
        if previous is not None:
            datasets.remove_unlisted(home, dataset)
        if previous is not None and mode == "append" and previous.pseudonymised != pseudonymise:
            raise IngestError(
                f"Dataset '{dataset}' was ingested with pseudonymisation "
                f"{'on' if previous.pseudonymised else 'off'}; append with the same setting."
            )
        report(0.02, "Inspecting files")
        infos = []
        for path in paths:
            info = inspect(path, cfg=cfg, mapping=mapping, complete_mapping=complete_mapping)
            try:
                check_mapping(info.mapping, info.headers, info.path.name)
            except SchemaError as exc:
                raise IngestError(str(exc)) from None
            infos.append(info)
        keys = _pseudonym_keys() if pseudonymise else {}
        return _load(infos, dataset, mode, strict, keys, previous, cfg, report, started)


def _load(infos, dataset, mode, strict, keys, previous, cfg, report, started) -> IngestResult:
    home = Path(cfg.home)
    ingest_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    base = datasets.dataset_dir(home, dataset)
    staging = base / datasets.STAGING / ingest_id
    staging.mkdir(parents=True, exist_ok=True)
    # Half the limit: the staged table spills to disk rather than push the process past it.
    # in_clause off: it turns a long IN list (the label words) into a join, and a join loses the
    # file's row order, which a CSV's rejects take their line numbers from (_stage_all) and the
    # written part keeps so date filters can skip row groups.
    con = connect(cfg, readable=[i.path for i in infos], memory_limit=_half(cfg.memory_limit),
                  options={"disabled_optimizers": "in_clause"})
    try:
        previous_files = _part_files(home, previous if mode == "append" else None)
        notes, found = _stage_all(con, infos, keys, cfg.timezone, previous_files, report)
        if found.repeats or found.in_dataset:
            report(0.7, "Marking duplicate transaction ids")
            _mark_duplicates(con, infos, found.repeats, previous_files if found.in_dataset else [])
        counts = _count(con, infos)
        if strict and counts["rejected"]:
            raise IngestError(_strict_message(con, infos, counts["rejected"]))
        if counts["loaded"] == 0:
            raise IngestError(_nothing_loaded_message(con, infos))
        report(0.8, "Writing Parquet")
        new_files, rejects_file = _write(con, infos, staging, ingest_id, bool(keys), counts["rejected"])
        summary = _summarise_new(con, len(infos))
    finally:
        con.close()
    report(0.9, "Publishing")
    datasets.fsync_tree(staging)
    published = _publish(home, dataset, staging, new_files, rejects_file)
    manifest = _next_manifest(
        previous, dataset, mode, published, infos, ingest_id, counts, summary, keys, notes, cfg
    )
    datasets.write_manifest(home, manifest)
    datasets.remove_unlisted(home, dataset)
    report(0.95, "Profiling")
    quality.refresh(cfg, dataset)
    seconds = time.perf_counter() - started
    logger.info("ingested %d rows into %s (%d rejected) in %.1f s",
                counts["loaded"], dataset, counts["rejected"], seconds)
    report(1.0, "Done")
    return IngestResult(
        dataset=dataset, ingest_id=ingest_id, mode=mode,
        files=[str(i.path) for i in infos], rows_read=counts["rows_read"],
        loaded=counts["loaded"], rejected=counts["rejected"],
        rejects_by_reason=counts["by_reason"], rejects_file=published[1],
        version=manifest["version"], seconds=seconds, notes=notes,
    )


def _half(limit: str) -> str:
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]i?B)\s*", limit, flags=re.I)
    if not match:
        return limit
    return f"{float(match.group(1)) / 2:g}{match.group(2)}"


@dataclass(frozen=True)
class _Found:
    """What the staged rows hold that rejects them."""

    rejects: bool  # a row failing a check, or an unreadable line
    repeats: bool  # an id more than once in this ingest
    in_dataset: bool  # an id the dataset already has

    @property
    def any(self) -> bool:
        return self.rejects or self.repeats or self.in_dataset


def _stage_all(con, infos, keys: dict, tz: str, previous_files: list[str], report: Progress):
    """Stage every file; (notes, what in them is to be rejected).

    A CSV file is read on both threads without numbering its rows: its staged table keeps the
    file's order (``_keeps_order``), so a row's number is its place there. That number is written
    into ``_row``, for rejects' line numbers, only when some row is rejected or an id repeats.
    """
    notes: list[str] = []
    by_order = []
    for n, info in enumerate(infos):
        report(0.05 + 0.6 * n / len(infos), f"Reading {info.path.name}")
        file_notes, ordered = _stage_file(con, n, info, keys, tz)
        notes += file_notes
        if ordered:
            by_order.append(n)
    report(0.65, "Checking for rows to reject")
    found = _find_rejects(con, infos, previous_files)
    for n in by_order if found.any else []:
        con.execute(f"UPDATE s{n} SET _row = rowid + 1")
    return notes, found


def _find_rejects(con, infos, previous_files: list[str]) -> _Found:
    """Whether any staged row fails a check or is unreadable, and whether any id repeats one of
    this ingest or of the dataset (its ``previous_files``)."""
    rejects = any(
        con.execute(f"SELECT count(*) FROM s{n} WHERE _reason IS NOT NULL").fetchone()[0]
        or ((table := _parse_rejects(con, n, info))
            and con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        for n, info in enumerate(infos)
    )
    union = _staged_ids(len(infos))
    # Most files have none; a distinct count is about half the cost of marking them.
    repeats = _has_repeats(con, union)
    in_dataset = bool(previous_files) and con.execute(
        f"SELECT count(*) > 0 FROM ({union}) WHERE transaction_id IN "
        "(SELECT transaction_id FROM read_parquet($files))", {"files": previous_files}
    ).fetchone()[0]
    return _Found(bool(rejects), bool(repeats), bool(in_dataset))


def _stage_file(con, n: int, info: SourceInfo, keys: dict, tz: str) -> tuple[list[str], bool]:
    """Read one file into temp table ``s{n}``: canonical columns, extras, _row, _line and _reason.

    Returns the file's notes and whether ``_row`` is left to be filled from the table's order.
    """
    # Generated ids are made of row numbers, so a file without ids is numbered as it is read.
    by_order = info.format == "csv" and "transaction_id" in info.mapping
    select, params, notes = _stage_select(con, n, info, keys, tz, numbered=not by_order)
    if by_order and not _keeps_order(con, select, {**params, **keys}):
        by_order = False
        select, params, notes = _stage_select(con, n, info, keys, tz, numbered=True)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE s{n} AS {select}", {**params, **keys})
        if info.format == "csv":
            _keep_last_scan_rejects(con, n)
    except DatabaseError as exc:
        raise IngestError(f"{info.path.name}: the file cannot be read ({_first_line(exc)}).") from exc
    return [f"{info.path.name}: {note}" for note in notes], by_order


# Streaming operators: DuckDB keeps insertion order through them into a created table. A join
# (the optimiser makes one of a long IN list) or a sort would not.
ORDER_KEEPING = frozenset({"READ_CSV", "PROJECTION", "FILTER"})


def _keeps_order(con, select: str, params: dict) -> bool:
    """Whether the rows ``select`` stages land in the file's order."""
    plan = json.loads(con.execute("EXPLAIN (FORMAT json) " + select, params).fetchall()[0][1])
    names, todo = set(), list(plan)
    while todo:
        node = todo.pop()
        names.add(node.get("name"))
        todo += node.get("children", [])
    return names <= ORDER_KEEPING


def _stage_select(con, n: int, info: SourceInfo, keys: dict, tz: str, numbered: bool):
    """(SQL selecting the staged rows of file ``n``, its parameters, notes on how it was read)."""
    source_sql, params = _source_sql(info, f"rej{n}", numbered)
    plan = _plan(con, info, source_sql, params, keys or None, tz)
    mapped = set(info.mapping.values())
    extras, seen = [], set(CANONICAL)
    for header in info.headers:
        if header in mapped:
            continue
        name = extra_column_name(header)
        while name in seen:
            name += "_"
        seen.add(name)
        extras.append(f"src.{quote_ident(header)} AS {quote_ident(name)}")
    checks = list(plan.checks)
    if info.format == "jsonl":
        checks.insert(0, ("NOT json_valid(src._json)", None, "invalid JSON", "left(src._json, 200)"))
        source_sql = f"SELECT * FROM ({source_sql}) WHERE _json IS NOT NULL AND trim(_json) <> ''"
    # The first failing check's number, computed once per row; reason, column and value follow.
    first = " ".join(f"WHEN {cond} THEN {k}" for k, (cond, *_rest) in enumerate(checks, 1))
    first = f"CASE {first} ELSE NULL END" if checks else "CAST(NULL AS INTEGER)"
    # CASE, not a list indexed by _k: a list literal is built again for every row.
    reasons = _case_k([_sql_literal(r) for _c, _col, r, _v in checks])
    columns = _case_k([_sql_literal(c) if c else "NULL" for _c, c, _r, _v in checks])
    values = " ".join(f"WHEN {k} THEN {v}" for k, (_c, _col, _r, v) in enumerate(checks, 1))
    values = f"CASE src._k {values} ELSE NULL END" if checks else "CAST(NULL AS VARCHAR)"
    line = "src._line" if info.format == "jsonl" else "CAST(NULL AS BIGINT)"
    inner = ", ".join(["src.*", *plan.inner])
    outputs = ", ".join(plan.select + extras)
    select = (
        f"SELECT {outputs}, src._row AS _row, {line} AS _line, "
        f"{reasons} AS _reason, {columns} AS _column, {values} AS _value "
        f"FROM (SELECT src.*, {first} AS _k FROM (SELECT {inner} FROM ({source_sql}) AS src) AS src) AS src"
    )
    return select, params, plan.notes


def _case_k(texts: list[str]) -> str:
    """The ``texts`` entry of check number ``src._k`` (from 1), NULL when no check failed."""
    whens = " ".join(f"WHEN {k} THEN {text}" for k, text in enumerate(texts, 1))
    return f"CAST(CASE src._k {whens} ELSE NULL END AS VARCHAR)" if texts else "CAST(NULL AS VARCHAR)"


def _keep_last_scan_rejects(con, n: int) -> None:
    """DuckDB appends every scan's rejects (sampling scans too); keep the full scan's only."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = $t", {"t": f"rej{n}"}
    ).fetchone()[0]
    if found:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE parse_rej{n} AS SELECT * FROM rej{n} "
            f"WHERE scan_id = (SELECT max(scan_id) FROM rej{n}_scan) "
            "QUALIFY row_number() OVER (PARTITION BY line ORDER BY column_idx) = 1"
        )


def _part_files(home: Path, previous) -> list[str]:
    return [str(p) for p in datasets.part_paths(home, previous)] if previous is not None else []


def _staged_ids(n_files: int) -> str:
    """SQL over the ids of every staged row not yet rejected, with their file and row."""
    return " UNION ALL ".join(
        f"SELECT {n} AS _f, _row, _line, transaction_id FROM s{n} WHERE _reason IS NULL"
        for n in range(n_files)
    )


def _mark_duplicates(con, infos, repeats: bool, files: list[str]) -> None:
    """Reject a transaction_id seen earlier in this ingest (when it ``repeats`` one) or already in
    the dataset's ``files``."""
    n_files = len(infos)
    if repeats:
        _mark_repeats(con, infos, _staged_ids(n_files))
    if not files:
        return
    for n in range(n_files):
        con.execute(
            f"UPDATE s{n} SET _reason = 'duplicate transaction_id (already in the dataset)', "
            f"_column = 'transaction_id', _value = transaction_id "
            f"WHERE _reason IS NULL AND transaction_id IN "
            "(SELECT transaction_id FROM read_parquet($files))",
            {"files": files},
        )


def _has_repeats(con, union: str) -> bool:
    return con.execute(
        f"SELECT count(transaction_id) > count(DISTINCT transaction_id) FROM ({union})"
    ).fetchone()[0]


def _mark_repeats(con, infos, union: str) -> None:
    """Reject every occurrence of an id after its first, naming where the first one was."""
    names = "[" + ", ".join(_sql_literal(i.path.name) for i in infos) + "]"
    # The first occurrence's line, computed for the duplicates only.
    first_line = "CASE first_f " + " ".join(
        f"WHEN {n} THEN {_line_expr(con, n, info, row='first_row', line='first_ln')}"
        for n, info in enumerate(infos)
    ) + " END"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE dup AS SELECT _f, _row, first_f, {first_line} AS first_line FROM ("
        "SELECT _f, _row, first_value(_f) OVER w AS first_f, first_value(_row) OVER w AS first_row, "
        "first_value(_line) OVER w AS first_ln, "
        f"row_number() OVER w AS k FROM ({union}) "
        "WINDOW w AS (PARTITION BY transaction_id ORDER BY _f, _row)) WHERE k > 1"
    )
    for n in range(len(infos)):
        # Same numbering as the rejects report: the line a spreadsheet shows, in the named file.
        con.execute(
            f"UPDATE s{n} SET _reason = 'duplicate transaction_id (first seen at line ' || "
            f"(dup.first_line) || ' of ' || ({names})[dup.first_f + 1] || ')', "
            f"_column = 'transaction_id', _value = s{n}.transaction_id "
            f"FROM dup WHERE dup._f = {n} AND dup._row = s{n}._row"
        )


def _parse_rejects(con, n: int, info: SourceInfo) -> str | None:
    """SQL over DuckDB's CSV reject table for file ``n``, or None when it has none."""
    if info.format != "csv":
        return None
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = $t", {"t": f"parse_rej{n}"}
    ).fetchone()[0]
    return f"parse_rej{n}" if exists else None


def _count(con, infos) -> dict:
    loaded = rejected = 0
    by_reason: dict[str, int] = {}
    for n, info in enumerate(infos):
        rows = con.execute(
            f"SELECT _reason, count(*) FROM s{n} GROUP BY ALL"
        ).fetchall()
        for reason, k in rows:
            if reason is None:
                loaded += k
            else:
                rejected += k
                # One count per rule: "where the first one was" differs for every duplicate.
                reason = re.sub(r" \(first seen at .*\)$", "", reason)
                by_reason[reason] = by_reason.get(reason, 0) + k
        table = _parse_rejects(con, n, info)
        if table:
            for err, k in con.execute(f"SELECT error_type, count(*) FROM {table} GROUP BY ALL").fetchall():
                reason = f"unreadable line ({str(err).lower()})"
                rejected += k
                by_reason[reason] = by_reason.get(reason, 0) + k
    return {"loaded": loaded, "rejected": rejected, "rows_read": loaded + rejected, "by_reason": by_reason}


def _line_expr(con, n: int, info: SourceInfo, row: str = "s._row", line: str = "s._line") -> str:
    """SQL for the line of data row ``row`` (1-based) of file ``n``: header = line 1, one line
    per record; JSON Lines carry their physical ``line``."""
    table = _parse_rejects(con, n, info)
    # A data row's record number in the file counts the unreadable lines before it too.
    if table:
        shift = (f"(SELECT count(*) FROM (SELECT line - 1 - row_number() OVER (ORDER BY line) AS g "
                 f"FROM {table}) r WHERE r.g < {row})")
    else:
        shift = "0"
    offset = "1" if info.format == "csv" else "0"
    return f"CAST(coalesce({line}, {row} + {offset} + {shift}) AS BIGINT)"


def _rejects_sql(con, infos, with_record: bool) -> str:
    """All rejects of this ingest: file, line, column (the canonical field), header (the file's own
    name for it), reason, value (and the raw record)."""
    parts = []
    for n, info in enumerate(infos):
        name = _sql_literal(info.path.name)
        table = _parse_rejects(con, n, info)
        record = "CAST(NULL AS VARCHAR)" if not with_record else (
            "left(CAST(s._value AS VARCHAR), 200)")
        parts.append(
            f"SELECT {name} AS file, {_line_expr(con, n, info)} AS line, s._column AS column, "
            f"{_renamed('s._column', info.mapping)} AS header, s._reason AS reason, "
            f"left(CAST(s._value AS VARCHAR), 200) AS value, {record} AS record "
            f"FROM s{n} s WHERE s._reason IS NOT NULL"
        )
        if table:
            rec = "left(csv_line, 500)" if with_record else "CAST(NULL AS VARCHAR)"
            canonical = {header: field for field, header in info.mapping.items()}
            parts.append(
                f"SELECT {name}, CAST(line AS BIGINT), {_renamed('column_name', canonical)}, column_name, "
                "'unreadable line (' || lower(CAST(error_type AS VARCHAR)) || ')', "
                f"left(error_message, 200), {rec} FROM {table}"
            )
    return " UNION ALL ".join(parts)


def _renamed(column: str, names: dict[str, str]) -> str:
    """SQL giving ``names[column]``, or the column itself when it has no other name."""
    if not names:
        return column
    cases = " ".join(f"WHEN {_sql_literal(a)} THEN {_sql_literal(b)}" for a, b in names.items())
    return f"CASE {column} {cases} ELSE {column} END"


def _is_time_sorted(con, n: int) -> bool:
    """Whether the staged rows, in the order they are stored (and would be written), are in time order."""
    unsorted = con.execute(
        f"SELECT count(*) FROM (SELECT transaction_datetime < lag(transaction_datetime) "
        f"OVER (ORDER BY rowid) AS back FROM s{n} WHERE _reason IS NULL) WHERE back"
    ).fetchall()[0][0]  # all: a result left unfinished would keep the connection busy
    return unsorted == 0


PART_ROW_GROUP_ROWS = 122_880
# Canonical columns with few values in a row group, which a dictionary makes small.
FEW_VALUED = ("transaction_type", "channel", "account_type", "merchant_location", "account_age_days")


# Types that pyarrow writes to Parquet as DuckDB's own writer does. A Parquet source's extra
# columns may have others (INTERVAL, UUID, HUGEINT...): their parts are written by DuckDB, so an
# append never changes a column's type.
PLAIN_TYPES = ("VARCHAR", "DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "BOOLEAN", "TIMESTAMP",
               "DATE")


def _plain_types(con, select: str) -> bool:
    return all(row[1] in PLAIN_TYPES for row in con.execute(f"DESCRIBE {select}").fetchall())


def _write(con, infos, staging: Path, ingest_id: str, pseudonymised: bool, rejected: int):
    files = []
    for n, _info in enumerate(infos):
        name = f"part-{ingest_id}-{n}.parquet"
        target = staging / name
        # Time-sorted parts let date filters skip row groups; most exports already are sorted.
        order = "" if _is_time_sorted(con, n) else " ORDER BY transaction_datetime, _row, rowid"
        select = f"SELECT * EXCLUDE (_row, _line, _reason, _column, _value) FROM s{n} WHERE _reason IS NULL{order}"
        if _plain_types(con, select):
            stream_to_parquet(con, select, target, PART_ROW_GROUP_ROWS, list(FEW_VALUED), compression="zstd",
                              level=1)
        else:
            con.execute(f"COPY ({select}) TO {_sql_literal(str(target))} (FORMAT parquet, COMPRESSION zstd, "
                        f"COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {PART_ROW_GROUP_ROWS})")
        files.append(name)
    rejects_name = None
    if rejected:
        rejects_name = f"rejects-{ingest_id}.parquet"
        con.execute(
            f"COPY (SELECT * FROM ({_rejects_sql(con, infos, not pseudonymised)}) ORDER BY file, line) "
            f"TO {_sql_literal(str(staging / rejects_name))} (FORMAT parquet)"
        )
    return files, rejects_name


def _summarise_new(con, n_files: int) -> dict:
    union = " UNION ALL ".join(
        f"SELECT transaction_datetime, fraudulent_activity FROM s{n} WHERE _reason IS NULL"
        for n in range(n_files)
    )
    frauds, first, last = con.execute(
        f"SELECT count(*) FILTER (WHERE fraudulent_activity), CAST(min(transaction_datetime) AS VARCHAR), "
        f"CAST(max(transaction_datetime) AS VARCHAR) FROM ({union})"
    ).fetchone()
    return {"frauds": int(frauds), "first": first, "last": last}


def _publish(home: Path, dataset: str, staging: Path, new_files: list[str], rejects: str | None):
    """Move staged files into place; they stay invisible until the manifest lists them."""
    base = datasets.dataset_dir(home, dataset)
    parts = base / datasets.PARTS
    parts.mkdir(parents=True, exist_ok=True)
    published = []
    for name in new_files:
        os.replace(staging / name, parts / name)
        published.append(f"{datasets.PARTS}/{name}")
    rejects_rel = None
    if rejects:
        folder = base / datasets.REJECTS
        folder.mkdir(exist_ok=True)
        os.replace(staging / rejects, folder / rejects)
        rejects_rel = f"{datasets.REJECTS}/{rejects}"
    datasets.fsync_dir(parts)
    return published, rejects_rel


def _next_manifest(previous, dataset, mode, published, infos, ingest_id, counts, summary, keys, notes, cfg):
    new_files, rejects_rel = published
    keep_old = previous is not None and mode == "append"
    files = (list(previous.files) if keep_old else []) + new_files
    columns = set(previous.columns) if keep_old else set()
    for info in infos:
        columns |= {c for c in info.mapping}
        columns |= {extra_column_name(h) for h in info.headers if h not in info.mapping.values()}
    firsts = [v for v in (summary["first"], previous.first if keep_old else None) if v]
    lasts = [v for v in (summary["last"], previous.last if keep_old else None) if v]
    entry = {
        "id": ingest_id,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "sources": [i.path.name for i in infos],
        "rows_read": counts["rows_read"],
        "loaded": counts["loaded"],
        "rejected": counts["rejected"],
        "rejects_by_reason": counts["by_reason"],
        "rejects_file": rejects_rel,
        "mappings": [i.mapping for i in infos],
        "notes": notes,
    }
    history = list(previous.ingests) if previous is not None else []
    live_rows = previous.rows if keep_old else 0
    live_frauds = previous.frauds if keep_old else 0
    base = datasets.dataset_dir(Path(cfg.home), dataset)
    size = sum((base / f).stat().st_size for f in files)
    return {
        "name": dataset,
        "version": (previous.version + 1) if previous else 1,
        "rows": live_rows + counts["loaded"],
        "rejected": (previous.rejected if previous else 0) + counts["rejected"],
        "frauds": live_frauds + summary["frauds"],
        "first": min(firsts) if firsts else None,
        "last": max(lasts) if lasts else None,
        "files": files,
        "columns": sorted(columns),
        "size_bytes": size,
        "pseudonymised": bool(keys),
        "timezone": cfg.timezone,
        "ingests": history + [entry],
    }


def _strict_message(con, infos, rejected: int) -> str:
    return (f"--strict: {rejected:,} row(s) would be rejected, so nothing was stored. "
            f"First problems: {_first_rejects(con, infos)}.")


def _nothing_loaded_message(con, infos) -> str:
    names = ", ".join(i.path.name for i in infos)
    return (f"{names}: no row could be loaded, so nothing was stored. "
            f"First problems: {_first_rejects(con, infos)}.")


def _first_rejects(con, infos, n: int = 3) -> str:
    rows = con.execute(
        f"SELECT file, line, \"column\", header, reason, value FROM ({_rejects_sql(con, infos, False)}) "
        f"ORDER BY file, line LIMIT {n}"
    ).fetchall()
    return "; ".join(
        f"{file} line {line}" + (f" column {_column_text(col, header)}" if col else "") + f": {reason}"
        + (f" ({value!r})" if value is not None and col else "")
        for file, line, col, header, reason, value in rows
    )


def _column_text(column: str, header: str | None) -> str:
    """The file's name for a column, with the field it maps to when that is another name."""
    return column if header in (None, column) else f"{header} ({column})"


def read_rejects(dataset: str, *, ingest_id: str | None = None, limit: int = 1000,
                 cfg: Settings | None = None):
    """Rejected rows of the latest (or the given) ingest, as a DataFrame of at most ``limit`` rows."""
    from fraudlens.store import get_store

    cfg = cfg or settings()
    info = datasets.read(cfg.home, dataset)
    entries = [i for i in info.ingests if ingest_id in (None, i["id"]) and i.get("rejects_file")]
    if not entries:
        return None
    path = datasets.dataset_dir(cfg.home, dataset) / entries[-1]["rejects_file"]
    return get_store(cfg).query(
        "rejects", "SELECT * FROM read_parquet($p) ORDER BY file, line LIMIT $n",
        {"p": str(path), "n": int(limit)},
    )


def load_mapping(path: str | Path) -> dict[str, str]:
    """A mapping JSON ``{canonical: source column}``; IngestError if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IngestError(f"{path.name}: no such mapping file.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(f"{path.name}: the mapping is not valid JSON ({exc}).") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise IngestError(
            f'{path.name}: the mapping must be a JSON object of names, e.g. {{"transaction_id": "TX_ID"}}.'
        )
    unknown = sorted(set(data) - set(CANONICAL))
    if unknown:
        raise IngestError(
            f"{path.name}: the mapping names unknown canonical column(s) {unknown}; "
            f"valid names are {list(CANONICAL)}."
        )
    return data


def save_mapping(mapping: dict[str, str], path: str | Path) -> None:
    Path(path).write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


__all__ = ["SourceInfo", "IngestResult", "inspect", "ingest", "read_rejects", "load_mapping",
           "save_mapping", "FraudLensError"]
