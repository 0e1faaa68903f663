"""Post one file to /v1/analyze in a fresh process and print the memory it took, as JSON.

Usage: python bomb_memory.py FILE [MAX_COMMENTS_LIMIT]. The service (the real app with the fake
model, one parse worker process) first analyses a small legitimate upload, so that every import
and cache is warm; then the file's upload is measured in both processes of the service, the
server and the worker that reads the upload: the growth of each one's peak RSS (ru_maxrss) and
of its resident memory afterwards (what it kept), summed.
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


def memory() -> tuple[int, int]:
    """(peak RSS, resident) of the process that runs this: the server, or a parse worker."""
    return peak_rss(), resident()


def main() -> None:
    path = Path(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else InsightsConfig().max_comments_limit
    insights = InsightsConfig(max_comments_limit=limit, max_comments=min(1000, limit))
    config = ServeConfig(max_wait_ms=0, max_parse_workers=1)  # one worker reads every upload
    app = create_app(config, FakeProvider(FakeModel()), insights=insights,
                     settings=ServiceSettings(api_token=None, cors_origins=[]))
    data = path.read_bytes()
    with TestClient(app) as client:
        warm = b"text\n" + b"a fine comment about the flight\n" * 50
        for name in ("warm.csv", "warm.csv.gz", "warm.parquet"):
            client.post("/v1/analyze", files={"file": (name, _as(name, warm))})

        def worker_memory() -> tuple[int, int]:
            return client.portal.call(app.state.pool.run, memory)

        before, worker_before = memory(), worker_memory()
        started = time.perf_counter()
        response = client.post("/v1/analyze", files={"file": (path.name, data)})
        seconds = time.perf_counter() - started
        after, worker_after = memory(), worker_memory()
    peak = (after[0] - before[0]) + (worker_after[0] - worker_before[0])
    kept = (after[1] - before[1]) + (worker_after[1] - worker_before[1])
    print(json.dumps({
        "status": response.status_code,
        "error": response.json().get("error", "")[:300] if response.status_code != 200 else "",
        "response_mib": round(len(response.content) / MIB, 1),
        "peak_growth_mib": round(peak / MIB, 1),
        "kept_mib": round(kept / MIB, 1),
        "worker_peak_growth_mib": round((worker_after[0] - worker_before[0]) / MIB, 1),
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
