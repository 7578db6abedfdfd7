"""The hash tokenizer: words and n-grams into buckets, with nothing fitted on the texts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from megalith.data.features.text import TextInput, TextInputEncoder
from megalith.data.hashing_tokenizer import HashingTokenizer
from megalith.data.tokenizers import fit_tokenizer, tokenizer_from_state


def test_bucket_is_murmurhash3_of_the_token_mod_the_buckets() -> None:
    tokenizer = HashingTokenizer(vocab_size=1004, lowercase=True, ngrams=2)
    ids = tokenizer.encode(["Hello world, hello"])[0]
    tokens = ["hello", "world", ",", "hello", "hello world", "world ,", ", hello"]
    expected = [4 + abs(murmurhash3_32(t, seed=0)) % 1000 for t in tokens]
    assert ids == expected
    assert ids[0] == ids[3]  # the same word, the same bucket
    assert all(4 <= i < 1004 for i in ids)


def test_bag_of_buckets_equals_scikit_learns_hashing_vectorizer() -> None:
    texts = ["The cat sat on the mat", "dogs and cats, and more dogs", "x"]
    reference = HashingVectorizer(
        n_features=64, alternate_sign=False, norm=None, token_pattern=r"(?u)\w+|[^\w\s]"
    ).transform(texts)
    ours = np.zeros((3, 68))
    for row, ids in enumerate(HashingTokenizer(68).encode(texts)):
        np.add.at(ours[row], ids, 1)
    np.testing.assert_array_equal(ours[:, 4:], reference.toarray())
    assert ours[:, :4].sum() == 0


def test_fit_learns_nothing_from_the_texts_and_the_state_round_trips() -> None:
    one = fit_tokenizer("hash", ["private words only here"], 500, True, 2)
    other = fit_tokenizer("hash", ["completely different rows"], 500, True, 2)
    assert (
        one.state()
        == other.state()
        == {
            "kind": "hash",
            "vocab_size": 500,
            "lowercase": True,
            "ngrams": 2,
        }
    )
    again = tokenizer_from_state(json.loads(json.dumps(one.state())))
    texts = ["A word never seen before", ""]
    assert again.encode(texts) == one.encode(texts)
    assert one.encode(texts)[1] == []


def test_text_input_with_hash_tokenizer_pads_to_max_length() -> None:
    config = TextInput(name="t", tokenizer="hash", vocab_size=100, max_length=6, ngrams=2)
    encoder = TextInputEncoder(config)
    encoder.fit(pd.Series(["one two three", "four"]), where="train")
    ids = encoder.encode(pd.Series(["one two", None]), where="test")
    assert ids.shape == (2, 6) and ids.dtype == np.int64
    assert (ids[0, :3] >= 4).all() and (ids[0, 3:] == 0).all() and (ids[1] == 0).all()
    assert encoder.spec().vocab_size == 100


def test_hash_tokenizer_needs_room_for_buckets() -> None:
    with pytest.raises(ValueError, match="vocab_size > 4"):
        HashingTokenizer(4)


def test_our_murmurhash_equals_scikit_learns() -> None:
    """The runtime hashes without scikit-learn; its buckets must be training's."""
    from sklearn.utils import murmurhash3_32 as reference

    from megalith.data.murmur import murmurhash3_32

    words = ["", "a", "ab", "abc", "abcd", "abcde", "héllo wörld", "日本語", "the quick brown"]
    words += [f"word{i} {'é' * (i % 5)}" for i in range(300)]
    for seed in (0, 7):
        assert [murmurhash3_32(w, seed) for w in words] == [reference(w, seed=seed) for w in words]


def test_the_runtime_hashes_text_without_scikit_learn() -> None:
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['sklearn'] = None; sys.modules['torch'] = None\n"
        "import megalith.runtime\n"
        "from megalith.data.hashing_tokenizer import HashingTokenizer\n"
        "print(HashingTokenizer(104).encode(['a b'])[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from megalith.data.hashing_tokenizer import HashingTokenizer

    assert done.stdout.strip() == str(HashingTokenizer(104).encode(["a b"])[0])
