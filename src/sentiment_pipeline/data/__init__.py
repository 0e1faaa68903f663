"""Data stages (ingestion, validation, preparation) and the table reader they share (tables)."""
