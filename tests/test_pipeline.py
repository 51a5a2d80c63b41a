from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.config import DataConfig
from rnnlab.data import pipeline
from rnnlab.data.batching import BucketBatchSampler, padding_share
from rnnlab.data.pipeline import cache_key, load_splits
from rnnlab.errors import RnnlabError
from rnnlab.paths import cache_dir


def small_csv(write_csv, n: int = 60, empty: int = 0) -> Path:
    rows: list[list[object]] = [["text", "label"]]
    for i in range(n):
        word = "good" if i % 2 else "bad"
        rows.append(
            [f"review {i} is {word} {word} " + "filler " * (i % 7), "pos" if i % 2 else "neg"]
        )
    rows += [["<br />", "pos"]] * empty
    return write_csv(rows)


def test_bundled_imdb_splits_dedup_and_are_disjoint() -> None:
    splits = load_splits(DataConfig(dataset="imdb", max_len=None))
    assert splits.info["duplicates_dropped"] == 96
    near = splits.info["near_duplicates_dropped"]
    assert 0 <= near < 10
    assert len(splits.train) + len(splits.val) + len(splits.test) == 25_000 - 96 - near
    assert abs(len(splits.val) - 2490) <= 2 and splits.vocab_size == 20_000
    assert load_splits(DataConfig(dataset="imdb")).train.lengths.max() == 400  # default max_len

    def texts(split):  # whole encoded texts
        return {split.token_ids(i).tobytes() for i in range(len(split))}

    train, val, test = texts(splits.train), texts(splits.val), texts(splits.test)
    assert not (train & test) and not (train & val) and not (val & test)


def test_bucketed_imdb_batches_carry_little_padding() -> None:
    lengths = load_splits(DataConfig(dataset="imdb")).train.lengths
    bucketed = padding_share(lengths, BucketBatchSampler(lengths, 64, bucket=True).batches())
    plain = padding_share(lengths, BucketBatchSampler(lengths, 64, bucket=False).batches())
    assert bucketed <= 0.05 and plain > 0.3


def test_cache_miss_then_hit_and_same_ids(write_csv) -> None:
    cfg = DataConfig(dataset=str(small_csv(write_csv)), max_len=None)
    first = load_splits(cfg)
    second = load_splits(cfg)
    assert (first.info["cache"], second.info["cache"]) == ("miss", "hit")
    assert np.array_equal(first.train.ids, second.train.ids)
    assert first.label_names == second.label_names == ["neg", "pos"]
    assert (cache_dir() / "encoded" / cache_key(cfg) / "meta.json").is_file()


changes = st.sampled_from(
    [
        {"tokenizer": "whitespace"},
        {"lowercase": False},
        {"strip_html": False},
        {"letters_only": True},
        {"max_size": 100},
        {"min_freq": 2},
        {"seed": 1},
        {"val_fraction": 0.2},
        {"test_fraction": 0.2},
        {"limit": 40},
        {"text_column": "text"},
        {"source": "bundled"},
    ]
)


@settings(max_examples=12, deadline=None)
@given(changes)
def test_every_setting_that_changes_ids_changes_the_key(change: dict[str, object]) -> None:
    base = DataConfig(dataset="some/file.csv")
    assert cache_key(dataclasses.replace(base, **change)) != cache_key(base)
    assert cache_key(dataclasses.replace(base)) == cache_key(base)


def test_editing_the_file_misses_the_cache(write_csv) -> None:
    path = small_csv(write_csv)
    key = cache_key(DataConfig(dataset=str(path)))
    path.write_text(path.read_text() + "new review,pos\n")
    assert cache_key(DataConfig(dataset=str(path))) != key


def test_truncation_is_applied_after_the_cache(write_csv) -> None:
    path = str(small_csv(write_csv))
    whole = load_splits(DataConfig(dataset=path, max_len=None))
    head = load_splits(DataConfig(dataset=path, max_len=3))
    tail = load_splits(DataConfig(dataset=path, max_len=3, truncate="tail"))
    assert head.info["cache"] == "hit"
    for i in range(len(whole.train)):
        ids = whole.train.token_ids(i)
        assert head.train.token_ids(i).tolist() == ids[:3].tolist()
        assert tail.train.token_ids(i).tolist() == ids[-3:].tolist()


def test_empty_texts_become_unk_or_are_dropped(write_csv) -> None:
    path = str(small_csv(write_csv, n=60, empty=20))
    unk = load_splits(DataConfig(dataset=path))
    drop = load_splits(DataConfig(dataset=path, empty="drop"))
    total_empty = sum(unk.info["empty_texts"].values())
    assert total_empty == 1  # 20 identical "<br />" rows dedup to one
    assert unk.train.lengths.min() >= 1
    n_unk = sum(len(unk.split(s)) for s in ("train", "val", "test"))
    n_drop = sum(len(drop.split(s)) for s in ("train", "val", "test"))
    assert n_unk - n_drop == 1


def test_a_failed_cache_write_leaves_no_entry(write_csv, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = DataConfig(dataset=str(small_csv(write_csv)), seed=99)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.np, "savez", boom)
    with pytest.raises(OSError):
        load_splits(cfg)
    entries = list((cache_dir() / "encoded").iterdir())
    assert not (cache_dir() / "encoded" / cache_key(cfg)).exists()
    assert not [e for e in entries if e.name.startswith(".tmp-")]


def test_a_damaged_cache_entry_is_rebuilt(write_csv) -> None:
    cfg = DataConfig(dataset=str(small_csv(write_csv)), seed=5)
    load_splits(cfg)
    (cache_dir() / "encoded" / cache_key(cfg) / "splits.npz").write_bytes(b"garbage")
    assert load_splits(cfg).info["cache"] == "miss"


def test_limit_subsamples_stratified() -> None:
    splits = load_splits(DataConfig(dataset="imdb", limit=300, max_len=50))
    total = len(splits.train) + len(splits.val) + len(splits.test)
    assert abs(total - 300) <= 2
    assert abs(int(splits.train.labels.sum()) - len(splits.train) / 2) <= 2


@pytest.mark.parametrize(
    "kwargs",
    [{"max_len": 0}, {"max_size": 0}, {"max_len": -5}, {"limit": 0}, {"truncate": "middle"}],
)
def test_bad_settings_are_user_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(RnnlabError):
        DataConfig(**kwargs)  # type: ignore[arg-type]
