"""Benchmark: the audience analysis of 10,000 comments (airline tweets with their timestamps),
with the logistic baseline and with the fine-tuned MiniLM stand-in on ONNX Runtime int8.

The same steps as `sentiment-pipeline analyze --input FILE --html --json --csv`, timed one by
one in this process: read the file (the table reader, timestamps parsed with --time-format),
classify, the rest of the analysis (language identification, aggregates, log-odds terms, the
three SVG charts), the HTML report and the per-comment CSV. Model loading is timed apart (a
server pays it once). Each model runs --rounds times; the table shows the median round.

    python benchmarks/bench_insights.py [--rows 10000] [--rounds 3]

The models come from benchmarks/.work/serving (bench_serving.py builds them: the baseline stage
on the airline split and MiniLM fine-tuned for one epoch, exported and quantised); missing ones
are built here the same way.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd

from common import AIRLINE, WORK, airline_project, print_table, write_result

ROWS = 10_000
TIME_FORMAT = "%d-%m-%Y %H.%M"


def sample_file(rows: int) -> Path:
    """The first `rows` airline tweets (all columns, tweet_created as the file has it)."""
    target = WORK / "insights" / f"airline_{rows}.csv"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        pd.read_csv(AIRLINE).head(rows).to_csv(target, index=False)
    return target


def models() -> dict[str, Path]:
    """The baseline and the int8 MiniLM of the serving benchmark, built when missing."""
    from sentiment_pipeline.stages import run_stage

    paths, manager = airline_project("serving")
    if not (paths.baseline_model / "model.json").is_file():
        run_stage("train_baseline", manager.config, paths)
    root = paths.root / "models"
    int8 = root / "minilm_onnx_int8"
    if not (int8 / "model.json").is_file():
        from bench_serving import fine_tune_minilm
        from sentiment_pipeline.config.export import OnnxExportConfig
        from sentiment_pipeline.models.conversion.int8 import quantize_int8
        from sentiment_pipeline.models.conversion.onnx_export import export_transformers

        fine_tune_minilm(paths, root / "minilm", 0, 1)
        export_transformers(root / "minilm", root / "minilm_onnx", OnnxExportConfig())
        quantize_int8(root / "minilm_onnx", int8, OnnxExportConfig())
    return {"baseline (TF-IDF + LR)": paths.baseline_model, "MiniLM ONNX int8": int8}


def one_round(model: Any, info: Any, source: Path, config: Any) -> dict[str, float]:
    from sentiment_pipeline.insights import pipeline, report

    times: dict[str, float] = {}
    started = time.perf_counter()
    batch = pipeline.file_batch(
        source,
        pipeline.FileOptions(text_column="text", time_column="tweet_created",
                             time_format=TIME_FORMAT, likes_column="retweet_count",
                             author_column="name"),
        limit=config.max_comments_limit,
    )
    times["read_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    proba = model.predict_proba([c.text for c in batch.comments])
    times["classify_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    result = pipeline.finish(batch, proba, model.labels, info, config, charts=True, started=mark)
    times["analysis_and_charts_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    report.render_html(result)
    report.comments_csv(result)
    times["report_s"] = time.perf_counter() - mark
    times["total_s"] = time.perf_counter() - started
    times["comments"] = len(batch.comments)
    times["days"] = len(result.trend.buckets)
    times["negative_share"] = result.breakdown[0].share
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from sentiment_pipeline.config.insights import InsightsConfig
    from sentiment_pipeline.insights import language
    from sentiment_pipeline.insights.result import ModelInfo
    from sentiment_pipeline.models.artifacts.loader import load_model
    from sentiment_pipeline.registry.opening import runtime

    source = sample_file(args.rows)
    config = InsightsConfig(max_comments_limit=max(args.rows, 10_000))
    language.identifier()  # built once per process (about 1 s), as in a server
    rows: list[dict[str, Any]] = []
    for name, folder in models().items():
        started = time.perf_counter()
        model = load_model(folder, require_real=True, trust=True)
        load_s = time.perf_counter() - started
        info = ModelInfo(name=name, version=None, kind=model.manifest.kind,
                         backend=runtime(model.manifest))
        rounds = [one_round(model, info, source, config) for _ in range(args.rounds)]
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        rows.append({
            "model": name,
            "comments": int(median["comments"]),
            "load_s": round(load_s, 2),
            "read_s": round(median["read_s"], 2),
            "classify_s": round(median["classify_s"], 2),
            "analysis_and_charts_s": round(median["analysis_and_charts_s"], 2),
            "report_s": round(median["report_s"], 2),
            "total_s": round(median["total_s"], 2),
            "trend_days": int(median["days"]),
            "negative_share": round(median["negative_share"], 4),
        })
        print(rows[-1], flush=True)
    print_table(rows)
    path = write_result("insights", {"rows": args.rows, "rounds": args.rounds,
                                     "source": str(AIRLINE.name), "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
