from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.batching import (
    Batch,
    BucketBatchSampler,
    DeviceSplit,
    collate,
    host_split,
    iterate_batches,
    move,
    on_device,
    padding_share,
)
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


# ----- batches gathered on the device (DeviceSplit) --------------------------------------------
def assert_same_batch(a: Batch, b: Batch) -> None:
    """Equal values and dtypes; lengths and indices on the CPU in both."""
    for name in ("tokens", "lengths", "labels", "indices"):
        x, y = getattr(a, name).cpu(), getattr(b, name).cpu()
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert a.lengths.device.type == b.lengths.device.type == "cpu"
    assert a.indices.device.type == b.indices.device.type == "cpu"


@settings(max_examples=60, deadline=None)
@given(
    length_arrays, st.integers(1, 70), st.booleans(), st.booleans(), st.integers(0, 3),
    st.sampled_from(["int64", "float32"]),
)  # fmt: skip
def test_device_split_gives_exactly_the_collated_batches(
    lengths: np.ndarray, batch_size: int, bucket: bool, shuffle: bool, epoch: int, labels: str
) -> None:
    """The device-resident path (here on the CPU) makes the host collate's batches, empty
    texts (length 0, one padding step) and regression targets included."""
    split = make_split(lengths)
    split.labels = split.labels.astype(labels)
    resident = DeviceSplit(split, "cpu")
    options = {"shuffle": shuffle, "bucket": bucket, "seed": 5, "epoch": epoch}
    host = list(iterate_batches(split, batch_size, **options))
    gathered = list(iterate_batches(resident, batch_size, **options))
    assert len(host) == len(gathered) == -(-len(lengths) // batch_size)
    for a, b in zip(host, gathered, strict=True):
        assert_same_batch(a, b)


def test_device_split_gathers_dense_features_and_single_batches() -> None:
    features = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    split = EncodedSplit(
        np.zeros(0, np.int32), np.arange(0, 24, 4), np.arange(5, dtype=np.float32), features
    )
    resident = DeviceSplit(split, "cpu")
    for rows in ([4, 0, 2], [1], [3, 3]):
        assert_same_batch(collate(split, np.asarray(rows)), resident.gather(np.asarray(rows)))
    words = EncodedSplit.from_sequences([[5, 6, 7], [], [9]], np.asarray([0, 1, 0]))
    batch = DeviceSplit(words, "cpu").gather(np.asarray([1, 0, 2]))
    assert batch.tokens.tolist() == [[0, 0, 0], [5, 6, 7], [9, 0, 0]]
    assert_same_batch(collate(words, np.asarray([1, 0, 2])), batch)


def test_device_split_reads_no_device_value_on_the_host() -> None:
    """On the meta device tensors have no values, so any host read (what costs a sync on a
    GPU) would raise: the gather needs none. Lengths and indices stay on the CPU."""
    lengths = np.random.default_rng(3).integers(0, 30, size=100)
    split = make_split(lengths)
    resident = DeviceSplit(split, "meta")
    assert resident.device.type == "meta" and len(resident) == 100
    host = list(iterate_batches(split, 16, seed=2))
    for a, b in zip(host, iterate_batches(resident, 16, seed=2), strict=True):
        assert b.tokens.device.type == b.labels.device.type == "meta"
        assert b.tokens.shape == a.tokens.shape and b.tokens.dtype == a.tokens.dtype
        assert torch.equal(a.lengths, b.lengths) and torch.equal(a.indices, b.indices)


def test_on_device_collates_on_the_cpu_and_moves_a_split_once_elsewhere() -> None:
    split = make_split(np.asarray([3, 1, 4]))
    assert on_device(split, "cpu") is split  # the CPU path is the host collate, unchanged
    assert host_split(split) is split
    meta = on_device(split, "meta")
    assert isinstance(meta, DeviceSplit) and meta.split is split and host_split(meta) is split
    assert on_device(meta, torch.device("meta")) is meta  # already there: not moved again
    cpu_copy = DeviceSplit(split, "cpu")
    assert on_device(cpu_copy, "cpu") is cpu_copy
    moved = on_device(cpu_copy, "meta")
    assert isinstance(moved, DeviceSplit) and moved.device.type == "meta" and moved.split is split


def test_batch_to_leaves_lengths_on_the_cpu_and_copies_nothing_on_the_same_device() -> None:
    batch = collate(make_split(np.asarray([2, 5])), np.asarray([0, 1]))
    same = batch.to("cpu")
    assert same.tokens is batch.tokens and same.labels is batch.labels  # no copy
    moved = batch.to("meta")
    assert moved.tokens.device.type == moved.labels.device.type == "meta"
    assert moved.lengths is batch.lengths and moved.indices is batch.indices
    assert move(batch.tokens, torch.device("cpu")) is batch.tokens
