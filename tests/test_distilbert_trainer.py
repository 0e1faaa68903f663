"""The transformer stage's data and Trainer: subsample, tokenise once, pad per batch, one trial."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("transformers")

from transformers import AutoTokenizer  # noqa: E402

from fake_trial import FakeReporter  # noqa: E402
from sentiment_pipeline.models.distilbert import encoding as dd  # noqa: E402
from sentiment_pipeline.models.distilbert import trainer as tr  # noqa: E402
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams  # noqa: E402
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


def _setup(tiny_transformer, tokenizer, splits) -> tr.TrainingSetup:
    return tr.TrainingSetup(
        model_name_or_path=str(tiny_transformer),
        tokenizer=tokenizer,
        train=dd.encode(tokenizer, splits["train"].iloc[:48], 32),
        val=dd.encode(tokenizer, splits["val"].iloc[:24], 32),
        labels=LABELS,
        device="cpu",
        precision="fp32",
        evals_per_epoch=3,
    )


PARAMS = DistilBERTTrialParams(
    learning_rate=1e-3, per_device_train_batch_size=8, weight_decay=0.0, num_train_epochs=1,
    warmup_steps=0.1,
)


def test_evaluations_fall_on_the_same_fractions_of_an_epoch_for_every_batch_size() -> None:
    # 2,000 rows: 125 steps per epoch at batch size 16, 63 at 32; two epochs, three points each.
    small = tr.evaluation_steps(250, 2, 3)
    large = tr.evaluation_steps(126, 2, 3)
    assert small == [42, 83, 125, 167, 208, 250] and large == [21, 42, 63, 84, 105, 126]
    assert [s * 16 // 32 for s in small] == [21, 41, 62, 83, 104, 125]  # within one batch
    assert tr.evaluation_steps(3, 1, 5) == [1, 2, 3]  # never more points than steps
    assert tr.evaluation_steps(10, 2, 1) == [5, 10]


def test_run_trial_reports_every_evaluation_and_leaves_nothing_on_disk(
    tiny_transformer, tokenizer, splits, tmp_path, monkeypatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    reporter = FakeReporter()
    outcome = tr.run_trial(_setup(tiny_transformer, tokenizer, splits), PARAMS, reporter)
    assert [i for i, _ in reporter.reports] == [1, 2, 3]  # 6 steps, 3 evaluations per epoch
    assert outcome.optimizer_steps == 6 and not outcome.stopped
    assert outcome.val_macro_f1 == reporter.reports[-1][1]
    assert reporter.progress == [(step, 6) for step in range(1, 7)]
    assert 0 <= outcome.val_accuracy <= 1 and outcome.train_samples_per_second > 0
    assert list(tmp_path.iterdir()) == []


def test_a_reporter_that_says_stop_ends_training_at_that_evaluation(
    tiny_transformer, tokenizer, splits
) -> None:
    outcome = tr.run_trial(_setup(tiny_transformer, tokenizer, splits), PARAMS, FakeReporter(True))
    assert outcome.stopped and outcome.evaluations == 1 and outcome.optimizer_steps == 2


def test_a_stop_at_the_last_evaluation_leaves_the_trial_complete(
    tiny_transformer, tokenizer, splits
) -> None:
    class StopAtThird(FakeReporter):
        def report(self, step, value, metrics=None):  # noqa: ANN001
            return step == 3

    outcome = tr.run_trial(_setup(tiny_transformer, tokenizer, splits), PARAMS, StopAtThird())
    assert not outcome.stopped and outcome.evaluations == 3 and outcome.optimizer_steps == 6


def test_evaluation_reads_the_validation_texts_in_length_order(
    tiny_transformer, tokenizer, splits, tmp_path
) -> None:
    """Padding per batch costs little only if a batch holds texts of similar length; a renamed
    Trainer hook (the eval sampler) would silently bring random batches back."""
    import dataclasses

    setup = dataclasses.replace(_setup(tiny_transformer, tokenizer, splits), eval_batch_size=4)
    trainer = tr.build_trainer(setup, PARAMS, str(tmp_path))
    widths = [batch["input_ids"].shape[1] for batch in trainer.get_eval_dataloader()]
    assert len(widths) == 6 and widths == sorted(widths) and widths[0] < widths[-1]
    lengths = [len(item["input_ids"]) for item in trainer.eval_dataset]
    assert lengths == sorted(lengths) and len(lengths) == len(setup.val)
