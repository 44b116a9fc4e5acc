"""Exceptions a user can act on. Anything else escaping the library is a bug."""

from __future__ import annotations


class FraudLensError(Exception):
    """Base class: the message says what went wrong and what to do next."""


class SchemaError(FraudLensError):
    """A name, column or mapping does not fit the canonical schema."""


class IngestError(FraudLensError):
    """A source file cannot be ingested as a whole; nothing was stored."""


class DatasetError(FraudLensError):
    """A dataset is missing, already exists, or is unreadable."""


class ModelError(FraudLensError):
    """A model is missing, refused or unusable."""


class QueryError(FraudLensError):
    """A query failed; carries its name and parameters for the log."""

    def __init__(self, name: str, params: dict | list | None, cause: Exception):
        self.name = name
        self.params = params
        self.cause = cause
        super().__init__(f"Query '{name}' failed: {cause}")
