"""Build a tiny DistilBERT classifier and WordPiece tokenizer offline, from fixture text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synthetic import LABELS, make_comments


def build_tiny_transformer(
    target: Path,
    dim: int = 32,
    hidden_dim: int = 64,
    vocab: Sequence[str] | None = None,
    architecture: str = "distilbert",
    texts: Sequence[str] | None = None,
) -> Path:
    """Save a 2-layer DistilBERT (random weights) and its tokenizer into `target`.

    vocab: a fixed WordPiece vocabulary (after the special tokens); None: one trained on fixture
    text, which differs from run to run (the trainer breaks frequency ties in hash order). With a
    fixed vocab and torch.manual_seed, two builds are the same model.
    architecture: "distilbert", or "bert" (segment ids: what an aspect pair model is built on).
    texts: what the vocabulary is trained on (default: the synthetic comments).
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        DistilBertTokenizerFast,
    )

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    fixed = None if vocab is None else {t: i for i, t in enumerate([*special, *vocab])}
    tokenizer = Tokenizer(models.WordPiece(fixed, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if vocab is None:
        texts = make_comments(600, seed=1)["text"].tolist() if texts is None else list(texts)
        trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=special)
        tokenizer.train_from_iterator(texts, trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer_class = BertTokenizerFast if architecture == "bert" else DistilBertTokenizerFast
    fast = tokenizer_class(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    common = {
        "vocab_size": tokenizer.get_vocab_size(),
        "max_position_embeddings": 64,
        "num_labels": len(LABELS),
        "id2label": dict(enumerate(LABELS)),
        "label2id": {label: i for i, label in enumerate(LABELS)},
        "pad_token_id": tokenizer.token_to_id("[PAD]"),
    }
    if architecture == "bert":
        model = BertForSequenceClassification(BertConfig(
            num_hidden_layers=2, hidden_size=dim, intermediate_size=hidden_dim,
            num_attention_heads=2, **common,
        ))
    else:
        model = DistilBertForSequenceClassification(DistilBertConfig(
            n_layers=2, dim=dim, hidden_dim=hidden_dim, n_heads=2, **common
        ))
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    fast.save_pretrained(target)
    return target
