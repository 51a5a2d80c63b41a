"""The data a saved run reads: its own splits rebuilt and checked, or another dataset encoded
with the run's own encoder and label names."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab.data import load_raw, load_splits
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.errors import RnnlabError
from rnnlab.runs.folder import LoadedRun


def same_dataset(a: str, b: str) -> bool:
    """The same name, or two paths to the same file."""
    if a == b:
        return True
    try:
        return Path(a).is_file() and Path(b).is_file() and Path(a).samefile(b)
    except OSError:
        return False


def own_splits(run: LoadedRun, *, whole_texts: bool = False) -> EncodedSplits:
    """The run's own splits rebuilt from its DataConfig (from the cache), refused when their
    vocabulary or labels differ from the run's. `whole_texts` skips truncation."""
    data = run.config.data
    splits = load_splits(dataclasses.replace(data, max_len=None) if whole_texts else data)
    saved, rebuilt = run.encoder, splits.encoder
    if saved is not None and rebuilt is not None and list(saved.itos) != list(rebuilt.itos):
        raise RnnlabError(
            f"the data rebuilt for {run.run_dir} has a different vocabulary than the run; "
            "train the run again or pass --dataset FILE to encode a file with the run's encoder"
        )
    if list(splits.label_names) != list(run.label_names):
        raise RnnlabError(
            f"the data rebuilt for {run.run_dir} has labels {splits.label_names}, the run "
            f"{run.label_names}; train the run again"
        )
    return splits


def foreign_split(
    run: LoadedRun,
    dataset: str,
    text_column: str | None = None,
    label_column: str | None = None,
    *,
    encoding: str = "utf-8",
    whole_texts: bool = False,
) -> EncodedSplit:
    """Another dataset's test (or only) split, encoded with the run's own encoder and labels
    mapped onto the run's. `encoding` is the file's text encoding; `whole_texts` skips
    truncation (empty texts stay empty)."""
    if run.encoder is None:
        raise RnnlabError(
            f"{run.run_dir} has no text encoder (synthetic inputs); use it on its own splits"
        )
    data = run.config.data
    raw = load_raw(dataset, data.source, text_column, label_column, encoding)
    part = (
        "test" if "test" in raw.splits else "all" if "all" in raw.splits else next(iter(raw.splits))
    )
    texts, labels = raw.splits[part]
    mapping = label_mapping(raw.label_names, run.label_names, dataset)
    ids = run.encoder.encode_full(texts) if whole_texts else run.encoder.encode_many(texts)
    return EncodedSplit.from_sequences(ids, mapping[np.asarray(labels, dtype=np.int64)])


def foreign_splits(run: LoadedRun, dataset: str, encoding: str = "utf-8") -> EncodedSplits:
    """`foreign_split` of whole texts as all three splits (for diagnostics, which pick texts)."""
    data = run.config.data
    split = foreign_split(
        run, dataset, data.text_column, data.label_column, encoding=encoding, whole_texts=True
    )
    assert run.encoder is not None  # foreign_split refuses runs without one
    return EncodedSplits(
        split, split, split, list(run.label_names), run.encoder.vocab_size, run.encoder,
        info={"dataset": dataset, "encoded_with": str(run.run_dir)},
    )  # fmt: skip


def label_mapping(theirs: Sequence[str], ours: Sequence[str], dataset: str) -> np.ndarray:
    """Map the dataset's label ids onto the run's: by name, else by integer value."""
    position = {name.lower(): i for i, name in enumerate(ours)}
    if all(str(name).lower() in position for name in theirs):
        return np.asarray([position[str(name).lower()] for name in theirs], dtype=np.int64)
    if all(str(name).isdigit() and int(name) < len(ours) for name in theirs):
        return np.asarray([int(name) for name in theirs], dtype=np.int64)
    raise RnnlabError(
        f"{dataset} has labels {list(theirs)} but the run knows {list(ours)}; "
        "relabel the file with the run's label names (or their ids)"
    )
