"""Errors that the CLI maps to exit codes: 2 for configuration, 1 for everything else."""


class PipelineError(Exception):
    """A known failure with a message meant for the user; the CLI exits 1."""

    exit_code = 1


class ConfigError(PipelineError):
    """The configuration is invalid; nothing has been run. The CLI exits 2."""

    exit_code = 2


class DataError(PipelineError):
    """Input data is missing, unreadable or fails validation."""


def shortened(text: str, size: int = 60) -> str:
    """`text` as a message shows it: its first `size` characters and its length when longer
    (a message never echoes an input of unbounded size)."""
    return text if len(text) <= size else f"{text[:size]}... ({len(text)} characters)"
