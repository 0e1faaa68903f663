"""distilbert_data: subsampling, fingerprints, tokenise once, dynamic padding, one trial."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("transformers")

from transformers import AutoTokenizer  # noqa: E402

from sentiment_pipeline.models import distilbert_data as dd  # noqa: E402
from synthetic import LABELS, make_processed_splits  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tiny_transformer):
    return AutoTokenizer.from_pretrained(tiny_transformer)


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    return make_processed_splits()


def test_subsample_is_seeded_keeps_order_and_leaves_small_frames_alone(splits) -> None:
    train = splits["train"]
    a, b = dd.subsample(train, 50, seed=1), dd.subsample(train, 50, seed=1)
    assert len(a) == 50 and a.equals(b)
    assert not a.equals(dd.subsample(train, 50, seed=2))
    positions = [train.index[train["text"] == t][0] for t in a["text"]]
    assert positions == sorted(positions)
    assert dd.subsample(train, None, 0).equals(train)
    assert dd.subsample(train, 10_000, 0).equals(train)


def test_fingerprint_follows_the_data(splits) -> None:
    train, val = splits["train"], splits["val"]
    assert dd.fingerprint(train, val) == dd.fingerprint(train.copy(), val.copy())
    assert dd.fingerprint(train, val) != dd.fingerprint(train.iloc[:-1], val)
    relabelled = train.assign(label=(train["label"] + 1) % 3)
    assert dd.fingerprint(train, val) != dd.fingerprint(relabelled, val)


def test_encode_truncates_without_padding(tokenizer, splits) -> None:
    frame = pd.DataFrame({"text": ["great", "the crew " * 40], "label": [2, 0]})
    data = dd.encode(tokenizer, frame, max_length=16)
    assert len(data) == 2
    assert data.lengths[0] < 16 and data.lengths[1] == 16
    item = data[0]
    assert set(item) == {"input_ids", "attention_mask", "labels"} and item["labels"] == 2
    assert len(item["input_ids"]) == data.lengths[0]


def test_collator_pads_each_batch_to_its_longest_text(tokenizer) -> None:
    frame = pd.DataFrame({"text": ["great", "awful crew", "the flight was delayed again"],
                          "label": [2, 0, 1]})
    data = dd.encode(tokenizer, frame, max_length=32)
    short = dd.collator(tokenizer)([data[0], data[1]])
    assert short["input_ids"].shape == (2, max(data.lengths[:2]))
    assert short["labels"].tolist() == [2, 0]
    assert dd.collator(tokenizer, "bf16")([data[0]])["input_ids"].shape[1] % 8 == 0


def _setup(tiny_transformer, tokenizer, splits) -> dd.TrainingSetup:
    return dd.TrainingSetup(
        model_name_or_path=str(tiny_transformer),
        tokenizer=tokenizer,
        train=dd.encode(tokenizer, splits["train"].iloc[:48], 32),
        val=dd.encode(tokenizer, splits["val"].iloc[:24], 32),
        labels=LABELS,
        device="cpu",
        precision="fp32",
        evals_per_epoch=3,
    )


PARAMS = {"lr": 1e-3, "batch_size": 8, "weight_decay": 0.0, "epochs": 1, "warmup_ratio": 0.1}


def test_the_chance_floor_is_the_macro_f1_of_always_answering_the_majority_class() -> None:
    # F1 of class 0 when always predicted: 2 * 0.6 / 1.6 = 0.75; classes 1 and 2 score 0.
    assert dd.chance_macro_f1([0, 0, 0, 1, 2]) == pytest.approx(0.25)
    assert dd.chance_macro_f1([2, 2]) == 1.0


def test_evaluations_fall_on_the_same_fractions_of_an_epoch_for_every_batch_size() -> None:
    # 2,000 rows: 125 steps per epoch at batch size 16, 63 at 32; two epochs, three points each.
    small = dd.evaluation_steps(250, 2, 3)
    large = dd.evaluation_steps(126, 2, 3)
    assert small == [42, 83, 125, 167, 208, 250] and large == [21, 42, 63, 84, 105, 126]
    assert [s * 16 // 32 for s in small] == [21, 41, 62, 83, 104, 125]  # within one batch
    assert dd.evaluation_steps(3, 1, 5) == [1, 2, 3]  # never more points than steps
    assert dd.evaluation_steps(10, 2, 1) == [5, 10]


def test_run_trial_reports_every_evaluation_and_leaves_nothing_on_disk(
    tiny_transformer, tokenizer, splits, tmp_path, monkeypatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    outcome = dd.run_trial(
        _setup(tiny_transformer, tokenizer, splits), PARAMS,
        lambda index, metrics: seen.append((index, metrics)) or False,
    )
    assert [i for i, _ in seen] == [1, 2, 3]  # 6 steps, 3 evaluations per epoch
    assert outcome.optimizer_steps == 6 and not outcome.stopped
    assert outcome.val_macro_f1 == seen[-1][1]["eval_macro_f1"]
    assert 0 <= outcome.val_accuracy <= 1 and outcome.train_samples_per_second > 0
    assert list(tmp_path.iterdir()) == []


def test_a_reporter_that_says_stop_ends_training_at_that_evaluation(
    tiny_transformer, tokenizer, splits
) -> None:
    outcome = dd.run_trial(_setup(tiny_transformer, tokenizer, splits), PARAMS, lambda i, m: True)
    assert outcome.stopped and outcome.evaluations == 1 and outcome.optimizer_steps == 2


def test_a_stop_at_the_last_evaluation_leaves_the_trial_complete(
    tiny_transformer, tokenizer, splits
) -> None:
    outcome = dd.run_trial(
        _setup(tiny_transformer, tokenizer, splits), PARAMS, lambda index, metrics: index == 3
    )
    assert not outcome.stopped and outcome.evaluations == 3 and outcome.optimizer_steps == 6
