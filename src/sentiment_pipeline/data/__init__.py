"""Data stages: ingestion, validation, preparation."""
