"""FraudLens: fraud analytics for banking supervisors, DuckDB over Parquet."""

__version__ = "0.1.0"
