"""The canonical transaction schema, column synonyms, label spellings and name rules."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from fraudlens.errors import SchemaError


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    required: bool
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("transaction_id", "VARCHAR", True, "Unique transaction identifier"),
    Column("transaction_datetime", "TIMESTAMP", True, "When it happened (stored in UTC)"),
    Column("account_id", "VARCHAR", True, "Card, customer or account"),
    Column("transaction_amount", "DOUBLE", True, "Amount in the dataset currency (PEN)"),
    Column("transaction_type", "VARCHAR", False, "purchase, transfer, withdrawal, payment, ..."),
    Column("channel", "VARCHAR", False, "pos, online, atm, mobile, branch"),
    Column("account_type", "VARCHAR", False, "checking, savings, credit, ..."),
    Column("account_balance", "DOUBLE", False, "Balance before the transaction"),
    Column("account_age_days", "INTEGER", False, "Days since the account was opened"),
    Column("merchant_id", "VARCHAR", False, "Merchant, terminal or counterparty"),
    Column("merchant_location", "VARCHAR", False, "City or region"),
    Column("ip_address", "VARCHAR", False, "Device IP address"),
    Column("fraudulent_activity", "BOOLEAN", False, "Label; empty where not (yet) known"),
)
CANONICAL = tuple(c.name for c in COLUMNS)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
TYPES = {c.name: c.sql_type for c in COLUMNS}
LABEL = "fraudulent_activity"
PERSONAL = ("account_id", "ip_address")
# Ground truth written by the generator; kept as an extra, never a model feature.
GROUND_TRUTH = "fraud_scenario"

# Source header spellings, compared after normalise_header().
SYNONYMS: dict[str, tuple[str, ...]] = {
    "transaction_id": (
        "transaction_id", "tx_id", "transactionid", "trans_id", "txn_id", "id_transaccion",
        "transaccion_id", "id_operacion", "operacion", "nro_operacion", "id",
    ),
    "transaction_datetime": (
        "transaction_datetime", "tx_datetime", "datetime", "timestamp", "transaction_date",
        "trans_date_trans_time", "date", "fecha", "fecha_hora", "fecha_transaccion", "step",
        "time", "event_time",
    ),
    "account_id": (
        "account_id", "customer_id", "nameorig", "cc_num", "card_id", "card_number", "account",
        "cuenta", "id_cuenta", "nro_cuenta", "cliente", "id_cliente", "client_id",
    ),
    "transaction_amount": (
        "transaction_amount", "tx_amount", "amount", "amt", "monto", "importe", "valor",
        "monto_transaccion",
    ),
    "transaction_type": (
        "transaction_type", "type", "tx_type", "tipo", "tipo_transaccion", "tipo_operacion",
    ),
    "channel": ("channel", "canal", "tx_channel"),
    "account_type": ("account_type", "tipo_cuenta", "product", "producto"),
    "account_balance": (
        "account_balance", "oldbalanceorg", "balance", "saldo", "saldo_inicial", "balance_before",
    ),
    "account_age_days": ("account_age_days", "account_age", "antiguedad_dias", "antiguedad"),
    "merchant_id": (
        "merchant_id", "terminal_id", "namedest", "merchant", "comercio", "id_comercio",
        "terminal", "destino", "beneficiario", "counterparty",
    ),
    "merchant_location": (
        "merchant_location", "location", "city", "ciudad", "region", "departamento",
        "ubicacion", "merchant_city",
    ),
    "ip_address": ("ip_address", "ip", "ip_addr", "direccion_ip"),
    "fraudulent_activity": (
        "fraudulent_activity", "isfraud", "is_fraud", "tx_fraud", "fraud", "label", "fraude",
        "es_fraude", "class",
    ),
}

LABEL_TRUE = ("1", "true", "t", "yes", "y", "fraud", "fraude", "fraudulent", "si", "sí", "s")
LABEL_FALSE = ("0", "false", "f", "no", "n", "legit", "legitimate", "genuine", "normal", "legitimo",
               "legítimo")
LABEL_UNKNOWN = ("", "unknown", "pending", "null", "na", "n/a", "desconocido", "pendiente")

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
RESERVED_NAMES = frozenset({"models", "ops", "tmp", "staging", "fixtures"})


def normalise_header(name: str) -> str:
    """Lower-case, strip accents and turn separators into underscores: ``'Fecha Hora'`` -> ``fecha_hora``."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text.strip().lower())
    return text.strip("_")


def detect_mapping(headers: list[str]) -> dict[str, str]:
    """Map canonical names to source headers by synonyms; the earliest synonym wins.

    Returns ``{canonical: source_header}`` for the columns found.
    """
    by_norm: dict[str, str] = {}
    for header in headers:
        by_norm.setdefault(normalise_header(header), header)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for canonical in CANONICAL:
        for synonym in SYNONYMS[canonical]:
            source = by_norm.get(synonym)
            if source is not None and source not in used:
                mapping[canonical] = source
                used.add(source)
                break
    return mapping


def check_mapping(mapping: dict[str, str], headers: list[str], source: str) -> None:
    """Raise SchemaError unless ``mapping`` names known canonical columns and existing headers."""
    unknown = sorted(set(mapping) - set(CANONICAL))
    if unknown:
        raise SchemaError(
            f"{source}: the mapping names unknown canonical column(s) {unknown}; "
            f"valid names are {list(CANONICAL)}."
        )
    for canonical, header in mapping.items():
        if header not in headers:
            raise SchemaError(
                f"{source}: the mapping sends '{canonical}' to column '{header}', which the file "
                f"does not have (its columns: {headers})."
            )
    targets = list(mapping.values())
    doubled = sorted({h for h in targets if targets.count(h) > 1})
    if doubled:
        raise SchemaError(f"{source}: the mapping uses column(s) {doubled} for more than one field.")
    # A source without ids (PaySim) gets generated ones: file name and row number.
    missing = [c for c in REQUIRED if c not in mapping and c != "transaction_id"]
    if missing:
        raise SchemaError(
            f"{source}: required column(s) {missing} not found. Columns in the file: {headers}. "
            "Map them with --mapping (or in the mapping table on the Data page)."
        )


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it is a plain identifier, else raise SchemaError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.lower() in RESERVED_NAMES:
        raise SchemaError(
            f"The dataset name must be a plain identifier (a letter, then letters, digits or _; "
            f"at most 63 characters; not one of {sorted(RESERVED_NAMES)}). Got {name!r} instead."
        )
    return name


def quote_ident(name: str) -> str:
    """Quote an SQL identifier; the one place identifiers enter SQL text."""
    return '"' + str(name).replace('"', '""') + '"'


def extra_column_name(header: str) -> str:
    """The stored name of an unmapped source column: normalised, never a canonical name."""
    base = normalise_header(header) or "column"
    # "rowid" (an Oracle/SQLite export column) would hide DuckDB's row pseudo-column of the same name.
    clash = base in CANONICAL or base == "rowid" or base[0].isdigit()
    return f"extra_{base}" if clash else base
