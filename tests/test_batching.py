from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.batching import BucketBatchSampler, collate, iterate_batches, padding_share
from rnnlab.data.encoded import EncodedSplit

length_arrays = st.lists(st.integers(0, 60), min_size=1, max_size=400).map(np.asarray)


def make_split(lengths: np.ndarray) -> EncodedSplit:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(2, 50, size=n) for n in lengths]
    return EncodedSplit.from_sequences(seqs, np.arange(len(lengths)) % 2)


@settings(max_examples=60, deadline=None)
@given(length_arrays, st.integers(1, 70), st.booleans(), st.booleans(), st.integers(0, 5))
def test_every_example_exactly_once_per_epoch(
    lengths: np.ndarray, batch_size: int, bucket: bool, shuffle: bool, epoch: int
) -> None:
    sampler = BucketBatchSampler(lengths, batch_size, bucket=bucket, shuffle=shuffle, seed=3)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert all(len(b) <= batch_size for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))


def test_sampler_is_deterministic_per_seed_and_epoch() -> None:
    lengths = np.random.default_rng(1).integers(1, 500, size=2000)
    a = BucketBatchSampler(lengths, 64, seed=7)
    b = BucketBatchSampler(lengths, 64, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    b.set_epoch(1)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_bucketing_cuts_padding() -> None:
    lengths = np.random.default_rng(2).lognormal(5, 0.7, size=5000).astype(int) + 1
    bucketed = padding_share(lengths, BucketBatchSampler(lengths, 64, bucket=True).batches())
    plain = padding_share(lengths, BucketBatchSampler(lengths, 64, bucket=False).batches())
    assert bucketed < plain / 4


def test_collate_pads_after_real_tokens() -> None:
    split = EncodedSplit.from_sequences([[5, 6, 7], [8], [9, 10]], np.asarray([0, 1, 0]))
    batch = collate(split, np.asarray([1, 0]))
    assert batch.tokens.tolist() == [[8, 0, 0], [5, 6, 7]]
    assert batch.tokens.dtype == torch.int64 and batch.lengths.dtype == torch.int64
    assert batch.lengths.tolist() == [1, 3] and batch.labels.tolist() == [1, 0]
    assert batch.lengths.device.type == "cpu" and batch.num_tokens == 4


def test_collate_survives_empty_texts_and_features() -> None:
    split = EncodedSplit.from_sequences([[], []], np.asarray([0, 1]))
    assert collate(split, np.asarray([0, 1])).tokens.shape == (2, 1)
    feats = EncodedSplit(
        np.zeros(0, np.int32),
        np.asarray([0, 4, 8]),
        np.asarray([0.5, 1.5], np.float32),
        np.ones((2, 4, 3), np.float32),
    )
    batch = collate(feats, np.asarray([1]))
    assert batch.tokens.shape == (1, 4, 3) and batch.tokens.dtype == torch.float32


@settings(max_examples=30, deadline=None)
@given(length_arrays.filter(lambda a: a.min() > 0), st.integers(1, 33))
def test_batches_reproduce_the_split(lengths: np.ndarray, batch_size: int) -> None:
    split = make_split(lengths)
    seen = 0
    for batch in iterate_batches(split, batch_size, seed=1):
        for row, idx in enumerate(batch.indices.tolist()):
            n = int(batch.lengths[row])
            assert batch.tokens[row, :n].tolist() == split.token_ids(idx).tolist()
            assert (batch.tokens[row, n:] == 0).all()
            seen += 1
    assert seen == len(lengths)
