"""Tiny randomly initialised Hugging Face models saved to a folder, as a user's local model
directory would be: a BERT-style classifier and a GPT-2-style language model. Nothing is
downloaded; the tokenizers are trained here on the given texts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

TOPICS = {
    "sport": ["match", "goal", "team", "coach", "league", "score", "player", "season"],
    "money": ["bank", "price", "market", "stock", "loan", "budget", "profit", "trade"],
    "weather": ["rain", "storm", "cloud", "sunny", "wind", "snow", "forecast", "cold"],
}
FILLER = ["the", "a", "today", "after", "news", "people", "said", "this", "week", "our", "big"]


def topic_table(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Short sentences whose topic shows in two of their words; the rest is filler."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    topics = rng.choice(names, rows)
    texts = []
    for topic in topics:
        words = list(rng.choice(FILLER, 5)) + list(rng.choice(TOPICS[topic], 2))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return pd.DataFrame({"text": texts, "topic": topics})


def save_tiny_bert(folder: Path, texts: Sequence[str]) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece tokenizer trained on `texts`."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    tokenizer.train_from_iterator(list(texts), trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(folder)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
    )
    torch.manual_seed(0)  # the same base model whichever tests ran before in this process
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def save_tiny_gpt2(folder: Path, texts: Sequence[str]) -> Path:
    """A 2-layer, 32-wide GPT-2 (tied embeddings) with a byte-level BPE tokenizer; its one
    special token, <|endoftext|>, is both end and begin of text, with id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(texts), trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    ).save_pretrained(folder)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)  # the same base model whichever tests ran before in this process
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder
