"""Validate stage: the row rules of data/rows.py, splitting the rows into validated and rejected.

Rows of predefined splits (an `origin` column from ingest) are validated source by source with
the same checks, each counted in the report's `sources`; their classes must be data.source's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.data.rows import check_sources, validate_sources
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationResult:
    total: int
    accepted: int
    rejected: int
    rejected_fraction: float
    reasons: dict[str, int] = field(default_factory=dict)


def run(config: DataConfig, paths: ProjectPaths) -> ValidationResult:
    from sentiment_pipeline import tracking

    # Stale outs from an earlier run must not pass for the result of this one if it fails.
    for out in (paths.validated, paths.rejected, paths.validation_report):
        out.unlink(missing_ok=True)
    if not paths.raw_dataset.is_file():
        raise DataError(f"no raw dataset at {paths.raw_dataset}; run the ingest stage first")
    frame = pd.read_parquet(paths.raw_dataset)
    good, rejected, report = validate_sources(frame, config)
    problems = check_sources(report, good, config)
    with tracking.stage_run(STAGE.name, config, paths):
        tracking.log_metrics(
            {k: v for k, v in report.items() if k not in ("class_balance", "sources")}
        )
        for key, own in report.get("sources", {}).items():
            if key != "source":
                tracking.log_metrics({key: {k: own[k] for k in ("total", "accepted", "rejected")}})
        tracking.log_metrics({"class_count": report["class_balance"]["counts"]})
        if problems:
            raise DataError("validation failed: " + "; ".join(problems))
        write_parquet(paths.validated, good)
        write_parquet(paths.rejected, rejected)
        write_json(paths.validation_report, report)
    logger.info(
        "validated %d rows: %d accepted, %d rejected %s",
        report["total"],
        report["accepted"],
        report["rejected"],
        {k: v for k, v in report["reasons"].items() if v},
    )
    return ValidationResult(
        total=report["total"],
        accepted=report["accepted"],
        rejected=report["rejected"],
        rejected_fraction=report["rejected_fraction"],
        reasons=report["reasons"],
    )


STAGE = Stage("validate", "data", DataConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
