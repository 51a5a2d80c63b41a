"""load_splits: raw source -> dedup -> stratified splits -> fitted encoder -> cached encoded arrays.

The cache holds whole (untruncated) texts keyed by a hash of the source and every setting that
changes the ids; `max_len`, `truncate` and `empty` are applied when loading (a vectorised slice),
so a sequence-length sweep encodes the corpus once. Writing and reading an entry is
`rnnlab.data.encoded_cache`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import DataConfig
from rnnlab.data.encoded import SPLITS, EncodedSplit, EncodedSplits
from rnnlab.data.encoded_cache import read_entry, write_entry
from rnnlab.data.local import codec_name
from rnnlab.data.sources import RawDataset, is_local_path, load_raw
from rnnlab.data.splits import drop_duplicates, stratified_split, stratified_subsample
from rnnlab.data.synthetic import load_synthetic
from rnnlab.data.text import AUTO, WORD_TOKENIZERS, Normalizer, word_tokenizer
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.data.vocab import UNK_ID
from rnnlab.errors import RnnlabError, disk_error
from rnnlab.paths import cache_dir

CACHE_VERSION = 2  # 2: val and test get an example even when rounding gives them none


def resolve_tokenizer(cfg: DataConfig) -> DataConfig:
    """The config with `tokenizer: auto` made concrete: the notebooks' ASCII rule (`regex`,
    `[a-z0-9]+`) for the named datasets (English, and their published results use it), Unicode
    word tokens (`unicode`) for local files, which may be in any language ("café" stays one
    word). Any other setting is kept as it is."""
    if cfg.tokenizer != AUTO:
        return cfg
    return dataclasses.replace(cfg, tokenizer="unicode" if is_local_path(cfg.dataset) else "regex")


def load_splits(cfg: DataConfig, *, use_cache: bool = True) -> EncodedSplits:
    """Encoded train/val/test splits for a DataConfig (from the on-disk cache when it can)."""
    cfg = resolve_tokenizer(cfg)
    if cfg.dataset.startswith("synthetic:"):
        return load_synthetic(cfg)
    splits = apply_length_policy(load_full_splits(cfg, use_cache=use_cache), cfg)
    drop = cfg.empty == "drop"  # checked on every load: a cached entry may predate a rule
    check_split_sizes(
        {name: splits.split(name).labels for name in SPLITS},
        splits.label_names,
        cfg,
        after="dropping the texts with no tokens (--drop-empty)" if drop else None,
        fix="keep them as <unk> (leave out --drop-empty) or add rows" if drop else None,
    )
    return splits


def load_full_splits(cfg: DataConfig, *, use_cache: bool = True) -> EncodedSplits:
    """Whole (untruncated) encoded texts, with empty ones kept at length 0."""
    cfg = resolve_tokenizer(cfg)
    key = cache_key(cfg)
    entry = cache_dir() / "encoded" / key
    full = read_entry(entry) if use_cache else None
    if full is not None:
        full.info["cache"] = "hit"
        return full
    full = build_full_splits(cfg)
    full.info["cache_key"] = key
    try:
        write_entry(entry, full)
    except OSError as exc:  # the cache has a folder of its own: the fix names it
        fix = "free some space, or set RNNLAB_CACHE_DIR to a writable folder with room"
        raise disk_error(exc, fix=fix) or exc from exc
    full.info["cache"] = "miss"
    return full


def cache_key(cfg: DataConfig) -> str:
    """Hash of the source's identity and every setting that changes the encoded ids."""
    cfg = resolve_tokenizer(cfg)  # `auto` hashes as the rule it stands for
    parts: dict[str, Any] = {
        "version": CACHE_VERSION,
        "dataset": _source_identity(cfg.dataset),
        "source": cfg.source,
        "columns": [cfg.text_column, cfg.label_column],
        "tokenizer": cfg.tokenizer,
        "tokenizer_file": _file_identity(cfg.tokenizer.split(":", 1)[1])
        if cfg.tokenizer.startswith("pretrained:")
        else None,
        "normalize": [cfg.lowercase, cfg.strip_html, cfg.letters_only],
        "vocab": [cfg.max_size, cfg.min_freq],
        "split": [cfg.val_fraction, cfg.test_fraction, cfg.limit, cfg.seed],
        "encoding": codec_name(cfg.encoding) if is_local_path(cfg.dataset) else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _source_identity(dataset: str) -> Any:
    return _file_identity(dataset) if is_local_path(dataset) else dataset


def _file_identity(path: str) -> list[Any]:
    p = Path(path)
    if not p.exists():
        return [path]  # load_raw raises the user-facing error
    stat = p.stat()
    return [str(p.resolve()), stat.st_size, stat.st_mtime_ns]


# ----- building --------------------------------------------------------------------------------
def build_full_splits(cfg: DataConfig) -> EncodedSplits:
    raw = load_raw(cfg.dataset, cfg.source, cfg.text_column, cfg.label_column, cfg.encoding)
    texts, labels, info = split_raw(raw, cfg)
    normalizer = Normalizer(cfg.lowercase, cfg.strip_html, cfg.letters_only)
    encoder, ids = TextEncoder.fit_encode(
        cfg.tokenizer, normalizer, texts, max_size=cfg.max_size, min_freq=cfg.min_freq
    )
    encoded = {name: EncodedSplit.from_sequences(ids[name], labels[name]) for name in SPLITS}
    encoded, info["near_duplicates_dropped"] = drop_cross_split_duplicates(encoded, texts, encoder)
    check_split_sizes(
        {name: encoded[name].labels for name in SPLITS},
        raw.label_names,
        cfg,
        after="dropping texts that encode the same as a text in a later split",
    )
    return EncodedSplits(
        encoded["train"],
        encoded["val"],
        encoded["test"],
        label_names=list(raw.label_names),
        vocab_size=encoder.vocab_size,
        encoder=encoder,
        info=info,
    )


def split_raw(
    raw: RawDataset, cfg: DataConfig
) -> tuple[dict[str, list[str]], dict[str, np.ndarray], dict[str, Any]]:
    """Dedup, optional stratified subsample (`limit`), and stratified train/val/test splits."""
    info: dict[str, Any] = {
        "dataset": raw.name,
        "source": raw.source,
        "label_names": raw.label_names,
        **raw.info,
    }
    texts: dict[str, list[str]] = {}
    labels: dict[str, np.ndarray] = {}
    if "all" in raw.splits:
        all_texts, all_labels, dropped = drop_duplicates(*raw.splits["all"])
        info["duplicates_dropped"] = dropped
        available = len(all_labels)
        _check_classes(all_labels, raw, cfg)
        if cfg.limit is not None:
            keep = stratified_subsample(all_labels, cfg.limit, cfg.seed)
            all_texts, all_labels = [all_texts[i] for i in keep], all_labels[keep]
        parts = stratified_split(
            all_labels, (cfg.val_fraction, cfg.test_fraction), cfg.seed, min_size=1
        )
        for name, idx in zip(SPLITS, parts, strict=True):
            texts[name], labels[name] = [all_texts[i] for i in idx], all_labels[idx]
        check_split_sizes(labels, raw.label_names, cfg, available=available)
        return texts, labels, info
    # the source has its own test split (and maybe val): keep them, carve val from train if needed
    test_texts, test_labels, dropped = drop_duplicates(*raw.splits["test"])
    in_test = set(test_texts)
    train_texts, train_labels, dropped_train = drop_duplicates(*raw.splits["train"])
    not_in_test = [i for i, t in enumerate(train_texts) if t not in in_test]
    train_texts, train_labels = [train_texts[i] for i in not_in_test], train_labels[not_in_test]
    info["duplicates_dropped"] = (
        dropped + dropped_train + (len(raw.splits["train"][0]) - dropped_train - len(not_in_test))
    )
    _check_classes(train_labels, raw, cfg)
    if "val" in raw.splits:
        pools = {
            "train": (train_texts, train_labels),
            "val": raw.splits["val"],
            "test": (test_texts, test_labels),
        }
    else:
        tr, va = stratified_split(train_labels, (cfg.val_fraction,), cfg.seed, min_size=1)
        pools = {
            "train": ([train_texts[i] for i in tr], train_labels[tr]),
            "val": ([train_texts[i] for i in va], train_labels[va]),
            "test": (test_texts, test_labels),
        }
    total = sum(len(v[1]) for v in pools.values())
    for name, (t, y) in pools.items():
        if cfg.limit is not None and total > cfg.limit:
            idx = stratified_subsample(y, max(1, round(cfg.limit * len(y) / total)), cfg.seed)
            t, y = [t[i] for i in idx], y[idx]
        texts[name], labels[name] = list(t), np.asarray(y, dtype=np.int64)
    check_split_sizes(labels, raw.label_names, cfg, available=total)
    return texts, labels, info


MIN_HELD_OUT = 2
"""Texts of every class that the validation split and the test split must each hold. With
fewer, a class's recall is 0 or 1 and the test accuracy of a small dataset is decided by one
or two texts (a 4-row file used to report "test accuracy 1.0000" from one text). The suite's
smallest corpora (60 IMDB reviews: 3 per class in each) pass; synthetic tasks, generated
balanced at --num-examples, are not checked."""


def texts_per_class_needed(cfg: DataConfig) -> int:
    """The fewest texts of one class that the stratified split turns into MIN_HELD_OUT
    validation and MIN_HELD_OUT test texts (and one to train on): 15 at the default 10%/10%."""
    n = MIN_HELD_OUT
    while True:
        held = [round(n * f) for f in (cfg.val_fraction, cfg.test_fraction)]
        if min(held) >= MIN_HELD_OUT and n - sum(held) >= 1:
            return n
        n += 1


def check_split_sizes(
    labels: dict[str, np.ndarray],
    label_names: list[str],
    cfg: DataConfig,
    *,
    available: int | None = None,
    after: str | None = None,
    fix: str | None = None,
) -> None:
    """Refuse splits that training and testing cannot use: an empty train split, a class with
    no training example, or a validation or test split with fewer than MIN_HELD_OUT texts of
    some class. The message names the counts, the minimum and the fix."""
    counts = {name: len(labels[name]) for name in SPLITS}
    empty = [name for name in SPLITS if counts[name] == 0]
    in_train = set(np.unique(labels["train"]).tolist())
    untrained = [name for i, name in enumerate(label_names) if i not in in_train]
    per_class = {
        name: np.bincount(labels[name], minlength=len(label_names)) for name in ("val", "test")
    }
    thin = [
        i
        for i in range(len(label_names))
        if i in in_train and min(int(per_class[n][i]) for n in ("val", "test")) < MIN_HELD_OUT
    ]
    if not empty and not untrained and not thin:
        return
    problems = []
    if empty:
        names = ", ".join(empty[:-1]) + " and " + empty[-1] if len(empty) > 1 else empty[0]
        problems.append(f"{names} would be empty")
    if untrained:
        shown = ", ".join(repr(n) for n in untrained[:3]) + (" ..." if len(untrained) > 3 else "")
        problems.append(f"no training example of class{'es' * (len(untrained) > 1)} {shown}")
    if thin and not empty:
        shown = ", ".join(
            f"{label_names[i]!r} (val {per_class['val'][i]}, test {per_class['test'][i]})"
            for i in thin[:3]
        ) + (" ..." if len(thin) > 3 else "")
        problems.append(f"fewer than {MIN_HELD_OUT} validation or test texts of {shown}")
    total = sum(counts.values())
    sizes = ", ".join(f"{name} {counts[name]}" for name in SPLITS)
    each = texts_per_class_needed(cfg)
    need = len(label_names) * each
    if fix is None:
        fix = "add rows" if is_local_path(cfg.dataset) else "use more data"
        if cfg.limit is not None and (available is None or available > cfg.limit):
            fix = f"give a larger --limit (at least {need})"
            if available is not None:
                fix += f"; the data has {available:,} distinct examples"
    where = f" after {after}" if after else ""
    limit = f" with --limit {cfg.limit}" if cfg.limit is not None else ""
    raise RnnlabError(
        f"{cfg.dataset}{limit}: {total:,} distinct example{'s' * (total != 1)}{where} "
        f"{'is' if total == 1 else 'are'} too few for train/val/test "
        f"splits ({sizes}: {'; '.join(problems)}); a meaningful test needs at least "
        f"{MIN_HELD_OUT} texts of every class in validation and in test, so about {each} "
        f"texts per class ({need} for {len(label_names)} classes) with the "
        f"{cfg.val_fraction:g}/{cfg.test_fraction:g} splits; {fix}"
    )


def drop_cross_split_duplicates(
    encoded: dict[str, EncodedSplit],
    texts: dict[str, list[str]] | None = None,
    encoder: TextEncoder | None = None,
) -> tuple[dict[str, EncodedSplit], int]:
    """Texts that differ only in case, HTML or punctuation encode to the same ids: keep such a
    text in test (or val) and drop its twins from the earlier splits, so no split leaks.

    Given the raw `texts` and a word-level `encoder`, twins with `<unk>` ids must also have the
    same tokens: "review 17" and "review 23" both encode to `review <unk>` when neither number
    is in the vocabulary, but they are not the same text. (Tokens are compared only for texts
    whose ids collide, so this costs nothing on real data.)"""
    word_level = texts is not None and encoder is not None and encoder.tokenizer in WORD_TOKENIZERS
    tokens_of: dict[tuple[str, int], list[str]] = {}

    def tokens(name: str, i: int) -> list[str]:
        if (name, i) not in tokens_of:
            assert texts is not None and encoder is not None
            split_words = word_tokenizer(encoder.tokenizer)
            tokens_of[name, i] = split_words(encoder.normalizer(texts[name][i]))
        return tokens_of[name, i]

    seen: dict[bytes, list[tuple[str, int]]] = {}

    def add(name: str) -> None:
        split = encoded[name]
        for i in range(len(split)):
            seen.setdefault(split.token_ids(i).tobytes(), []).append((name, i))

    def has_twin(name: str, i: int) -> bool:
        ids = encoded[name].token_ids(i)
        twins = seen.get(ids.tobytes())
        if not twins:
            return False
        if not word_level or not (ids == UNK_ID).any():
            return True
        return any(tokens(other, j) == tokens(name, i) for other, j in twins)

    add("test")
    dropped = 0
    for name in ("val", "train"):
        split = encoded[name]
        keep = np.asarray([i for i in range(len(split)) if not has_twin(name, i)], dtype=np.int64)
        dropped += len(split) - len(keep)
        add(name)
        encoded[name] = split.select(keep)
    return encoded, dropped


def _check_classes(labels: np.ndarray, raw: RawDataset, cfg: DataConfig) -> None:
    present = np.unique(labels)
    if len(present) < 2:
        left = f" ({raw.label_names[int(present[0])]!r})" if len(present) else ""
        raise RnnlabError(
            f"{cfg.dataset}: once repeated texts are removed only one label class is left"
            f"{left}; a classifier needs at least two: add texts of the other classes"
        )


def apply_length_policy(full: EncodedSplits, cfg: DataConfig) -> EncodedSplits:
    """Truncate to max_len (head or tail) and give empty texts one <unk> or drop them."""
    out: dict[str, EncodedSplit] = {}
    empty: dict[str, int] = {}
    for name in SPLITS:
        split = full.split(name)
        is_empty = split.lengths == 0
        empty[name] = int(is_empty.sum())
        rows = np.flatnonzero(~is_empty) if cfg.empty == "drop" else None
        out[name] = split.select(
            rows,
            max_len=cfg.max_len,
            tail=cfg.truncate == "tail",
            unk_for_empty=cfg.empty == "unk",
            unk_id=UNK_ID,
        )
    info = {**full.info, "empty_texts": empty, "empty_policy": cfg.empty, "max_len": cfg.max_len}
    encoder = full.encoder
    if encoder is not None:
        encoder.max_len, encoder.truncate = cfg.max_len, cfg.truncate
    return EncodedSplits(
        out["train"],
        out["val"],
        out["test"],
        full.label_names,
        full.vocab_size,
        encoder,
        full.task,
        full.input_dim,
        info,
    )
