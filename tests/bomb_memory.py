"""Post one file to /v1/analyze in a fresh process and print the memory it took, as JSON.

Usage: python bomb_memory.py FILE [MAX_COMMENTS_LIMIT]. The service (the real app with the fake
model) first analyses a small legitimate upload, so that every import and cache is warm; then
the file's upload is measured: the growth of the process's peak RSS (ru_maxrss) and of its
resident memory afterwards (what it kept).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from sentiment_pipeline.config.insights import InsightsConfig
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.service_settings import ServiceSettings
from sentiment_pipeline.serving.app import create_app
from serving_fakes import FakeModel, FakeProvider

MIB = 1 << 20


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def resident() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def main() -> None:
    path = Path(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else InsightsConfig().max_comments_limit
    insights = InsightsConfig(max_comments_limit=limit, max_comments=min(1000, limit))
    app = create_app(ServeConfig(max_wait_ms=0), FakeProvider(FakeModel()), insights=insights,
                     settings=ServiceSettings(api_token=None, cors_origins=[]))
    data = path.read_bytes()
    with TestClient(app) as client:
        warm = b"text\n" + b"a fine comment about the flight\n" * 50
        for name in ("warm.csv", "warm.csv.gz", "warm.parquet"):
            client.post("/v1/analyze", files={"file": (name, _as(name, warm))})
        before_peak, before_resident = peak_rss(), resident()
        started = time.perf_counter()
        response = client.post("/v1/analyze", files={"file": (path.name, data)})
        seconds = time.perf_counter() - started
        after_peak, after_resident = peak_rss(), resident()
    print(json.dumps({
        "status": response.status_code,
        "error": response.json().get("error", "")[:300] if response.status_code != 200 else "",
        "response_mib": round(len(response.content) / MIB, 1),
        "peak_growth_mib": round((after_peak - before_peak) / MIB, 1),
        "kept_mib": round((after_resident - before_resident) / MIB, 1),
        "seconds": round(seconds, 2),
    }))


def _as(name: str, csv: bytes) -> bytes:
    """The small warm-up upload in the format its name says."""
    if name.endswith(".gz"):
        import gzip

        return gzip.compress(csv)
    if name.endswith(".parquet"):
        import io

        import pandas as pd

        buffer = io.BytesIO()
        pd.read_csv(io.BytesIO(csv)).to_parquet(buffer)
        return buffer.getvalue()
    return csv


if __name__ == "__main__":
    main()
