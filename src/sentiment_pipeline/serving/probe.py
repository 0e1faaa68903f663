"""The container's health check: GET /health on this machine, exit 0 when it answers 200."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

PORT_VARIABLE = "SENTIMENT_PIPELINE_PORT"


def health_url(environ: dict[str, str]) -> str:
    """http://127.0.0.1:<port>/health, the port from the environment (8000 when unset)."""
    text = environ.get(PORT_VARIABLE, "8000").strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{PORT_VARIABLE}={text!r} is not a port; expected 1 to 65535")
    return f"http://127.0.0.1:{int(text)}/health"


def probe(url: str, timeout_s: float = 2.0) -> str | None:
    """None when `url` answers 200 within `timeout_s`; else why not, as one line."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http only
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {type(exc).__name__}: {exc}"
    return None if status == 200 else f"{url} answered {status}"


def main() -> int:
    try:
        failure = probe(health_url(dict(os.environ)))
    except ValueError as exc:
        failure = str(exc)
    if failure is not None:
        print(f"unhealthy: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
