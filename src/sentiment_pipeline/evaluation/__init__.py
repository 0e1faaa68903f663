"""Test-set evaluation and champion selection."""
