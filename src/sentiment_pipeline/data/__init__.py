"""Data stages (source, ingest, validate, prepare) and the table reader they share (tables)."""
