"""Benchmark: the aspect model on SemEval-2014 laptops, and aspects in a 10,000-comment analysis.

Part 1 (accuracy) runs the pipeline's own aspect stages in a project under benchmarks/.work/aspects:
prepare_aspects (laptops_train.csv as aspects.source, laptops_test.csv as aspects.test_source),
train_aspects (the offline MiniLM stand-in fine-tuned on the CPU: train.aspects.allow_cpu), the
pair baseline, export_aspects_onnx (fp32, int8) and evaluate_aspects, then reads the test metrics
each model's evaluation wrote. `--set KEY=VALUE` overrides any params.yaml key (one lever at a
time: --set train.aspects.mark_aspect=false, --set train.aspects.class_weight=none).

Part 2 (analysis) analyses the first 10,000 airline tweets with five aspects, as `analyze
--aspect ...` does: mentions, the pair classification of every mention with the int8 aspect model
from part 1 (one predict_proba call over all pairs, batched by the model), the aggregation and the
charts; the sentiment model is the logistic baseline of bench_insights. The same analysis without
aspects is timed beside it; each runs --rounds times and the table shows the median.

    python benchmarks/bench_aspects.py [--part accuracy|analysis|both] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from common import (
    AIRLINE,
    WORK,
    airline_project,
    main_checkout,
    minilm_path,
    print_table,
    write_result,
)

ABSA = main_checkout().parent / "shared" / "data" / "absa"
ASPECT_STAGES = ("prepare_aspects", "train_aspects", "train_aspect_baseline",
                 "export_aspects_onnx", "evaluate_aspects")
MODELS = ("aspect_model", "aspect_model_onnx", "aspect_model_onnx-int8", "pair_baseline",
          "majority")
ASPECTS = ["delay=late,delayed,delays", "staff=crew,attendant,attendants,agent,agents",
           "luggage=bag,bags,baggage,luggage", "seat=seats,legroom", "refund=refunds,voucher"]


def accuracy(overrides: list[str]) -> dict[str, Any]:
    """Run the aspect stages on the laptops data; the test metrics of every model."""
    import os

    from sentiment_pipeline.config.manager import ConfigurationManager
    from sentiment_pipeline.paths import ProjectPaths
    from sentiment_pipeline.stages import run_stage

    if not (ABSA / "laptops_train.csv").is_file():
        raise SystemExit(f"benchmark data not found in {ABSA}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = WORK / "aspects"
    shutil.rmtree(root / "models" / "aspects", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    params = root / "params.yaml"
    params.write_text((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    paths = ProjectPaths.at(root)
    manager = ConfigurationManager(params, [
        f"aspects.source={ABSA / 'laptops_train.csv'}",
        f"aspects.test_source={ABSA / 'laptops_test.csv'}",
        f"train.aspects.model_name_or_path={minilm_path()}",
        "train.aspects.allow_cpu=true",
        *overrides,
    ])
    walls = {}
    for stage in ASPECT_STAGES:
        started = time.perf_counter()
        run_stage(stage, manager.config, paths)
        walls[stage] = round(time.perf_counter() - started, 1)
        print(f"{stage}: {walls[stage]} s", flush=True)
    rows = []
    for name in MODELS:
        file = paths.aspect_evaluation_dir / f"{name}_test_metrics.json"
        if not file.is_file():
            continue
        metrics = json.loads(file.read_text())
        rows.append({"model": name, "accuracy": metrics.get("accuracy"),
                     "macro_f1": metrics.get("macro_f1"),
                     "status": metrics.get("status", "ready")})
    config = manager.config.train.aspects.model_dump(mode="json")
    return {"overrides": overrides, "stage_wall_s": walls, "train_aspects": config,
            "results": rows, "published_test_file": published(paths),
            "behavioural": behavioural(paths)}


def published(paths: Any) -> list[dict[str, Any]]:
    """Every model on all 638 rows of laptops_test.csv as published: prepare_aspects drops the
    (text, aspect) pairs that occur twice (5 rows: the same term twice in a sentence, with two
    labels or one), so the stage's test split has 633; published figures count all 638."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score

    from sentiment_pipeline.models.artifacts.loader import load_model

    test = pd.read_csv(ABSA / "laptops_test.csv")
    pairs = list(zip(test["text"], test["aspect"], strict=True))
    rows = []
    for name, folder in (("aspect_model", paths.aspect_model), ("aspect_model_onnx",
                         paths.aspect_onnx), ("aspect_model_onnx-int8", paths.aspect_onnx_int8),
                         ("pair_baseline", paths.pair_baseline)):
        if not (folder / "model.json").is_file():
            continue
        model = load_model(folder, trust=True)
        if model.manifest.kind == "placeholder":
            continue
        predicted = model.predict(pairs)
        rows.append({"model": name, "rows": len(test),
                     "accuracy": accuracy_score(test["sentiment"], predicted),
                     "macro_f1": f1_score(test["sentiment"], predicted, average="macro")})
    majority = pd.read_csv(ABSA / "laptops_train.csv")["sentiment"].value_counts().index[0]
    rows.append({"model": f"majority ({majority})", "rows": len(test),
                 "accuracy": float((test["sentiment"] == majority).mean()),
                 "macro_f1": f1_score(test["sentiment"], [majority] * len(test),
                                      average="macro")})
    return rows


def behavioural(paths: Any) -> dict[str, Any]:
    """The pass rate of each behavioural suite, per model (evaluate_aspects' metrics files)."""
    rates = {}
    for name in ("aspect_model", "pair_baseline"):
        file = paths.aspect_evaluation_dir / f"{name}_test_metrics.json"
        if file.is_file():
            rates[name] = json.loads(file.read_text()).get("behavioural")
    return rates


def one_round(model: Any, aspect_model: Any, source: Path, config: Any,
              aspects: list[Any]) -> dict[str, float]:
    from sentiment_pipeline.insights import pipeline
    from sentiment_pipeline.insights.aspects import score_aspects
    from sentiment_pipeline.insights.result import ModelInfo

    info = ModelInfo(name="baseline", version=None, kind="sklearn", backend="sklearn")
    batch = pipeline.file_batch(
        source, pipeline.FileOptions(text_column="text", time_column="tweet_created",
                                     time_format="%d-%m-%Y %H.%M",
                                     likes_column="retweet_count"),
        limit=config.max_comments_limit,
    )
    texts = [c.text for c in batch.comments]
    started = time.perf_counter()
    scored = score_aspects(texts, aspects, 0, aspect_model, config) if aspects else None
    aspects_s = time.perf_counter() - started
    proba = model.predict_proba(texts)
    result = pipeline.finish(batch, proba, model.labels, info, config, charts=True,
                             started=started, aspects=scored)
    return {"total_s": time.perf_counter() - started, "aspects_s": aspects_s,
            "pairs": len(scored.mentions) if scored else 0,
            "aspect_rows": len(result.aspects)}


def sentiment_baseline() -> Path:
    """The logistic baseline on the airline split (bench_insights' project), trained if missing."""
    from sentiment_pipeline.stages import run_stage

    paths, manager = airline_project("serving")
    if not (paths.baseline_model / "model.json").is_file():
        run_stage("train_baseline", manager.config, paths)
    return paths.baseline_model


def analysis(int8: Path, rounds: int) -> list[dict[str, Any]]:
    from bench_insights import sample_file
    from sentiment_pipeline.config.insights import InsightsConfig
    from sentiment_pipeline.insights import language
    from sentiment_pipeline.insights.aspects import parse_aspect
    from sentiment_pipeline.models.artifacts.loader import load_model

    if not AIRLINE.is_file():
        raise SystemExit(f"benchmark data not found at {AIRLINE}")
    source = sample_file(10_000)
    config = InsightsConfig(max_comments_limit=10_000)
    language.identifier()
    model = load_model(sentiment_baseline(), require_real=True, trust=True)
    aspect_model = load_model(int8, require_real=True, trust=True)
    rows = []
    for asked in ([], [parse_aspect(text) for text in ASPECTS]):
        runs = [one_round(model, aspect_model, source, config, asked) for _ in range(rounds)]
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        rows.append({
            "aspects": len(asked), "comments": 10_000, "pairs": int(median["pairs"]),
            "aspects_s": round(median["aspects_s"], 2),
            "pairs_per_s": round(median["pairs"] / median["aspects_s"]) if asked else None,
            "total_s": round(median["total_s"], 2),
        })
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["accuracy", "analysis", "both"], default="both")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="", help="what this accuracy run tries (the table)")
    args = parser.parse_args()
    result_file = Path(__file__).resolve().parent / "results" / "aspects.json"
    payload = json.loads(result_file.read_text()) if result_file.is_file() else {}
    int8 = WORK / "aspects" / "models" / "aspects" / "aspect_onnx_int8"
    if args.part in ("accuracy", "both"):
        # Every accuracy run is kept (one per lever or recipe), newest last.
        run = {"label": args.label, **accuracy(args.overrides)}
        payload["accuracy"] = [r for r in payload.get("accuracy", []) if r["label"] != args.label]
        payload["accuracy"].append(run)
        print_table(run["results"])
    if args.part in ("analysis", "both"):
        payload["analysis"] = {"aspects": ASPECTS, "rounds": args.rounds,
                               "results": analysis(int8, args.rounds)}
        print_table(payload["analysis"]["results"])
    print(f"wrote {write_result('aspects', payload)}")


if __name__ == "__main__":
    main()
