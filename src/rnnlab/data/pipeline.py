"""load_splits: raw source -> dedup -> stratified splits -> fitted encoder -> cached encoded arrays.

The cache holds whole (untruncated) texts keyed by a hash of the source and every setting that
changes the ids; `max_len`, `truncate` and `empty` are applied when loading (a vectorised slice),
so a sequence-length sweep encodes the corpus once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.config import DataConfig
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.data.sources import RawDataset, is_local_path, load_raw
from rnnlab.data.splits import drop_duplicates, stratified_split, stratified_subsample
from rnnlab.data.text import Normalizer
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.data.vocab import UNK_ID
from rnnlab.errors import RnnlabError
from rnnlab.io import read_json, write_json_atomic
from rnnlab.paths import cache_dir

CACHE_VERSION = 1
SPLITS = ("train", "val", "test")


def load_splits(cfg: DataConfig, *, use_cache: bool = True) -> EncodedSplits:
    """Encoded train/val/test splits for a DataConfig (from the on-disk cache when it can)."""
    if cfg.dataset.startswith("synthetic:"):
        from rnnlab.data.synthetic import load_synthetic

        return load_synthetic(cfg)
    return apply_length_policy(load_full_splits(cfg, use_cache=use_cache), cfg)


def load_full_splits(cfg: DataConfig, *, use_cache: bool = True) -> EncodedSplits:
    """Whole (untruncated) encoded texts, with empty ones kept at length 0."""
    key = cache_key(cfg)
    entry = cache_dir() / "encoded" / key
    full = _read_entry(entry) if use_cache else None
    if full is not None:
        full.info["cache"] = "hit"
        return full
    full = build_full_splits(cfg)
    full.info["cache_key"] = key
    _write_entry(entry, full)
    full.info["cache"] = "miss"
    return full


def cache_key(cfg: DataConfig) -> str:
    """Hash of the source's identity and every setting that changes the encoded ids."""
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
    raw = load_raw(cfg.dataset, cfg.source, cfg.text_column, cfg.label_column)
    texts, labels, info = split_raw(raw, cfg)
    if len(texts["train"]) == 0:
        raise RnnlabError(
            f"{raw.name}: the training split is empty; give more data or a larger --limit"
        )
    normalizer = Normalizer(cfg.lowercase, cfg.strip_html, cfg.letters_only)
    encoder, ids = TextEncoder.fit_encode(
        cfg.tokenizer, normalizer, texts, max_size=cfg.max_size, min_freq=cfg.min_freq
    )
    encoded = {name: EncodedSplit.from_sequences(ids[name], labels[name]) for name in SPLITS}
    encoded, info["near_duplicates_dropped"] = drop_cross_split_duplicates(encoded)
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
        _check_classes(all_labels, raw)
        if cfg.limit is not None:
            keep = stratified_subsample(all_labels, cfg.limit, cfg.seed)
            all_texts, all_labels = [all_texts[i] for i in keep], all_labels[keep]
        parts = stratified_split(all_labels, (cfg.val_fraction, cfg.test_fraction), cfg.seed)
        for name, idx in zip(SPLITS, parts, strict=True):
            texts[name], labels[name] = [all_texts[i] for i in idx], all_labels[idx]
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
    _check_classes(train_labels, raw)
    if "val" in raw.splits:
        pools = {
            "train": (train_texts, train_labels),
            "val": raw.splits["val"],
            "test": (test_texts, test_labels),
        }
    else:
        tr, va = stratified_split(train_labels, (cfg.val_fraction,), cfg.seed)
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
    return texts, labels, info


def drop_cross_split_duplicates(
    encoded: dict[str, EncodedSplit],
) -> tuple[dict[str, EncodedSplit], int]:
    """Texts that differ only in case, HTML or punctuation encode to the same ids: keep such a
    text in test (or val) and drop its twins from the earlier splits, so no split leaks."""

    def keys(split: EncodedSplit) -> list[bytes]:
        return [split.token_ids(i).tobytes() for i in range(len(split))]

    seen = set(keys(encoded["test"]))
    dropped = 0
    for name in ("val", "train"):
        split = encoded[name]
        split_keys = keys(split)
        keep = np.asarray([i for i, k in enumerate(split_keys) if k not in seen], dtype=np.int64)
        dropped += len(split) - len(keep)
        encoded[name] = split.select(keep)
        seen.update(split_keys)
    return encoded, dropped


def _check_classes(labels: np.ndarray, raw: RawDataset) -> None:
    present = np.unique(labels)
    if len(present) < 2:
        raise RnnlabError(
            f"{raw.name}: only one label class is present; a classifier needs at least two"
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


# ----- cache entries ---------------------------------------------------------------------------
def _write_entry(entry: Path, splits: EncodedSplits) -> None:
    """Write into a temporary folder, then rename: a crash never leaves a half-written entry."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    try:
        arrays: dict[str, Any] = {}
        for name in SPLITS:
            split = splits.split(name)
            arrays.update(
                {
                    f"{name}_ids": split.ids,
                    f"{name}_offsets": split.offsets,
                    f"{name}_labels": split.labels,
                }
            )
        np.savez(tmp / "splits.npz", **arrays)
        splits.encoder.save(tmp / "encoder")
        write_json_atomic(
            tmp / "meta.json",
            {
                "label_names": splits.label_names,
                "vocab_size": splits.vocab_size,
                "info": splits.info,
            },
        )
        try:
            tmp.rename(entry)
        except OSError:  # another process wrote the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_entry(entry: Path) -> EncodedSplits | None:
    if not (entry / "meta.json").is_file():
        return None
    try:
        meta = read_json(entry / "meta.json")
        with np.load(entry / "splits.npz") as npz:
            parts = {
                n: EncodedSplit(npz[f"{n}_ids"], npz[f"{n}_offsets"], npz[f"{n}_labels"])
                for n in SPLITS
            }
        encoder = TextEncoder.load(entry / "encoder")
    except (OSError, ValueError, KeyError, RnnlabError):
        shutil.rmtree(entry, ignore_errors=True)  # a damaged entry is rebuilt
        return None
    return EncodedSplits(
        parts["train"],
        parts["val"],
        parts["test"],
        meta["label_names"],
        meta["vocab_size"],
        encoder,
        info=meta["info"],
    )
