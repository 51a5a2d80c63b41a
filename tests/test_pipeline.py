from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.config import DataConfig
from rnnlab.data import encoded_cache, pipeline
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

    monkeypatch.setattr(encoded_cache.np, "savez", boom)
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


# ----- datasets too small for the splits ---------------------------------------------------------
def sentiment_rows(n: int) -> list[list[object]]:
    return [["text", "label"]] + [
        [f"review {i} is {'good' if i % 2 else 'bad'}", "pos" if i % 2 else "neg"] for i in range(n)
    ]


@pytest.mark.parametrize(
    ("rows", "limit", "message"),
    [
        (
            2,
            None,
            r"2 distinct examples are too few .*\(train 2, val 0, test 0: val and test would "
            r"be empty\); a meaningful test needs at least 2 texts of every class in validation "
            r"and in test, so about 15 texts per class \(30 for 2 classes\).*add rows",
        ),
        (3, None, r"train 2, val 1, test 0: test would be empty"),
        (
            4,
            None,
            r"4 distinct examples are too few .*\(train 2, val 1, test 1: fewer than 2 validation "
            r"or test texts of 'neg' \(val 1, test 0\), 'pos' \(val 0, test 1\)\).*add rows",
        ),
        (28, None, r"'neg' \(val 1, test 1\)"),
        (
            60,
            1,
            r"with --limit 1: 0 distinct examples are too few .*train, val and test would be "
            r"empty; no training example of classes 'neg', 'pos'.*"
            r"give a larger --limit \(at least 30\); the data has 60 distinct examples",
        ),
        (60, 2, r"with --limit 2: 2 distinct examples .*give a larger --limit"),
        (60, 20, r"with --limit 20: 20 distinct examples .*larger --limit \(at least 30\)"),
    ],
)
def test_too_small_for_the_splits_is_refused_with_the_counts(
    write_csv, rows: int, limit: int | None, message: str
) -> None:
    path = write_csv(sentiment_rows(rows))
    with pytest.raises(RnnlabError, match=message) as err:
        load_splits(DataConfig(dataset=str(path), limit=limit))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("rows", "limit"), [(30, None), (60, 30), (200, 31)])
def test_the_smallest_data_gets_two_of_every_class_in_val_and_test(
    write_csv, rows: int, limit: int | None
) -> None:
    splits = load_splits(DataConfig(dataset=str(write_csv(sentiment_rows(rows))), limit=limit))
    for name in ("val", "test"):
        assert np.bincount(splits.split(name).labels).tolist() == [2, 2]
    assert sorted(set(splits.train.labels.tolist())) == [0, 1]


def test_the_rule_follows_the_split_fractions() -> None:
    assert pipeline.texts_per_class_needed(DataConfig()) == 15
    assert pipeline.texts_per_class_needed(DataConfig(val_fraction=0.2, test_fraction=0.2)) == 8


def test_limit_on_bundled_data_gets_test_metrics_splits() -> None:
    splits = load_splits(DataConfig(dataset="imdb", limit=60, max_len=20))
    assert [len(splits.split(n)) for n in ("train", "val", "test")] == [48, 6, 6]
    with pytest.raises(
        RnnlabError, match=r"imdb with --limit 1: 1 distinct example is too few.*larger --limit"
    ):
        load_splits(DataConfig(dataset="imdb", limit=1))
    with pytest.raises(RnnlabError, match=r"imdb with --limit 10: .*larger --limit \(at least 30"):
        load_splits(DataConfig(dataset="imdb", limit=10))


def test_a_cached_entry_too_small_for_the_rule_is_refused(write_csv, monkeypatch) -> None:
    cfg = DataConfig(dataset=str(write_csv(sentiment_rows(4))))
    monkeypatch.setattr(pipeline, "MIN_HELD_OUT", 0)  # cached under an older, looser rule
    load_splits(cfg)
    monkeypatch.undo()
    with pytest.raises(RnnlabError, match="fewer than 2 validation or test texts"):
        load_splits(cfg)


def test_a_class_that_the_limit_leaves_out_is_refused(write_csv) -> None:
    rows = [["text", "label"]] + [[f"common {i}", "big"] for i in range(190)]
    rows += [[f"rare {i}", "small"] for i in range(10)]
    with pytest.raises(RnnlabError, match=r"no training example of class 'small'.*--limit"):
        load_splits(DataConfig(dataset=str(write_csv(rows)), limit=10))


def test_dropping_empty_texts_that_empties_a_split_is_refused(write_csv) -> None:
    rows = [["text", "label"], ["good film", "pos"], ["bad film", "neg"]]
    rows += [[f"<p>{'&nbsp;' * i}</p>", "pos" if i % 2 else "neg"] for i in range(1, 7)]
    cfg = DataConfig(dataset=str(write_csv(rows)), empty="drop", seed=2)
    with pytest.raises(RnnlabError, match="too few for train/val/test"):
        load_splits(cfg)


def test_auto_tokenizer_is_the_notebooks_rule_for_named_datasets_and_unicode_for_files(
    tmp_path: Path,
) -> None:
    from rnnlab.data import resolve_tokenizer

    assert resolve_tokenizer(DataConfig()).tokenizer == "regex"
    assert resolve_tokenizer(DataConfig(dataset="bbc_news")).tokenizer == "regex"
    assert resolve_tokenizer(DataConfig(dataset="a/b.csv")).tokenizer == "unicode"
    assert resolve_tokenizer(DataConfig(dataset="a/b.csv", tokenizer="regex")).tokenizer == "regex"
    # the named datasets hash (and so encode) exactly as before `auto` existed
    assert cache_key(DataConfig()) == cache_key(DataConfig(tokenizer="regex"))
    assert cache_key(DataConfig(dataset="a/b.csv")) == cache_key(
        DataConfig(dataset="a/b.csv", tokenizer="unicode")
    )
    path = tmp_path / "fr.csv"
    rows = [f"un café déjà vu {i},{'ab'[i % 2]}" for i in range(40)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    encoder = load_splits(DataConfig(dataset=str(path))).encoder
    assert encoder is not None and encoder.tokenizer == "unicode"
    assert {"café", "déjà"} <= set(encoder.itos)
    ascii_rule = load_splits(DataConfig(dataset=str(path), tokenizer="regex")).encoder
    assert ascii_rule is not None and "caf" in ascii_rule.itos and "café" not in ascii_rule.itos


def test_encoding_is_part_of_the_cache_key(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    rows = "text,label\n" + "".join(f"caf\xe9 {i},{'ab'[i % 2]}\n" for i in range(40))
    path.write_bytes(rows.encode("latin-1"))
    latin = DataConfig(dataset=str(path), encoding="latin-1", tokenizer="whitespace")
    assert cache_key(latin) == cache_key(dataclasses.replace(latin, encoding="latin1"))
    assert cache_key(latin) != cache_key(dataclasses.replace(latin, encoding="cp1252"))
    assert cache_key(DataConfig(encoding="latin-1")) == cache_key(DataConfig())  # bundled
    assert "café" in load_splits(latin).encoder.itos  # type: ignore[union-attr]
    with pytest.raises(RnnlabError, match="--encoding latin-1"):
        load_splits(dataclasses.replace(latin, encoding="utf-8"))


# ----- leftovers of killed cache writers ---------------------------------------------------------
def test_stale_temp_folders_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import fcntl
    import os
    import time

    now = time.time()

    def folder(name: str, age: float, lock: bool) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "splits.npz").write_bytes(b"half")
        if lock:
            (path / ".writing").touch()
        os.utime(path, (now - age, now - age))
        return path

    dead = folder(".tmp-dead", 120, lock=True)  # lock file, nobody holds it: a killed writer
    live = folder(".tmp-live", 7200, lock=True)
    fresh = folder(".tmp-fresh", 5, lock=True)
    old_unlocked = folder(".tmp-old", 7200, lock=False)  # from before the lock file
    young_unlocked = folder(".tmp-young", 600, lock=False)
    entry = folder("0123abcd", 7200, lock=False)  # a finished entry is never touched
    with (live / ".writing").open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        removed = encoded_cache.remove_stale_temp_dirs(tmp_path, now=now)
    assert sorted(removed) == sorted([dead, old_unlocked])
    assert not dead.exists() and not old_unlocked.exists()
    assert live.exists() and fresh.exists() and young_unlocked.exists() and entry.exists()


def test_a_killed_cache_writer_is_cleaned_up_by_the_next_write(write_csv, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    path = write_csv(sentiment_rows(40))
    encoded = cache_dir() / "encoded"
    script = (
        "import time, numpy\n"
        "from rnnlab.data import encoded_cache, pipeline\n"
        "from rnnlab.config import DataConfig\n"
        "def slow(*a, **k):\n"
        "    print('writing', flush=True); time.sleep(60)\n"
        "encoded_cache.np.savez = slow\n"
        f"pipeline.load_splits(DataConfig(dataset={str(path)!r}, seed=41))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        (left,) = [p for p in encoded.glob(".tmp-*") if (p / ".writing").exists()]
        assert encoded_cache.remove_stale_temp_dirs(encoded, now=time.time() + 600) == []  # alive
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert left.exists()  # what a kill leaves behind
    os.utime(left, (time.time() - 120, time.time() - 120))
    load_splits(DataConfig(dataset=str(path), seed=42))  # the next write cleans up
    assert not left.exists()
    assert not list(encoded.glob(".tmp-*"))
