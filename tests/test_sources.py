from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlab.data import sources
from rnnlab.data.sources import load_raw
from rnnlab.errors import RnnlabError


def test_bundled_imdb_and_rotten_tomatoes() -> None:
    imdb = load_raw("imdb")
    texts, labels = imdb.splits["all"]
    assert len(texts) == 25_000 and np.bincount(labels).tolist() == [12_500, 12_500]
    assert imdb.label_names == ["negative", "positive"]
    rt = load_raw("rotten_tomatoes")
    assert len(rt.splits["all"][0]) == 8_530


def test_bundled_bbc_news_labels_from_sorted_topics() -> None:
    bbc = load_raw("bbc_news")
    texts, labels = bbc.splits["all"]
    assert len(texts) == 2_225
    assert bbc.label_names == sorted(bbc.label_names) and len(bbc.label_names) == 5
    assert np.bincount(labels).min() > 300


def test_ag_news_offline_fails_fast_with_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(RnnlabError, match="cannot reach the Hugging Face Hub") as err:
        load_raw("ag_news")
    assert time.perf_counter() - start < 2
    assert "imdb" in str(err.value) and "local file" in str(err.value)


def test_bundled_source_for_hub_only_dataset_is_refused() -> None:
    with pytest.raises(RnnlabError, match="not bundled"):
        load_raw("ag_news", source="bundled")


def test_unknown_dataset_lists_names() -> None:
    with pytest.raises(RnnlabError, match="imdb, rotten_tomatoes, bbc_news, ag_news"):
        load_raw("imbd")


def test_csv_with_review_sentiment_layout(write_csv) -> None:
    path = write_csv(
        [
            ["review", "sentiment"],
            ["Loved it<br />", "positive"],
            ["Awful, just awful", "negative"],
            ['Said "meh",\nthen left', "negative"],
        ]
    )
    raw = load_raw(str(path))
    texts, labels = raw.splits["all"]
    assert raw.label_names == ["negative", "positive"]
    assert labels.tolist() == [1, 0, 0] and texts[2] == 'Said "meh",\nthen left'


def test_tsv_jsonl_parquet_and_explicit_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.tsv").write_text("body\ttopic\nstocks fell\tbusiness\ngoal scored\tsport\n")
    raw = load_raw(str(tmp_path / "d.tsv"), text_column="body", label_column="topic")
    assert raw.label_names == ["business", "sport"]
    rows = [{"text": "a", "label": 3}, {"text": "b", "label": 1}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    raw = load_raw(str(tmp_path / "d.jsonl"))
    assert raw.label_names == ["1", "3"] and raw.splits["all"][1].tolist() == [1, 0]
    pq.write_table(pa.table({"text": ["x", "y"], "label": ["b", "a"]}), tmp_path / "d.parquet")
    assert load_raw(str(tmp_path / "d.parquet")).splits["all"][1].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (None, {}, "does not exist"),
        ("", {}, "is empty"),
        ("text,label\n", {}, "no rows"),
        ("body,label\nx,1\ny,0\n", {}, r"no text column .*'body', 'label'"),
        (
            "text,label\nx,1\ny,0\n",
            {"label_column": "stars"},
            r"no column 'stars'.*\['text', 'label'\]",
        ),
        ("text,label\nx,pos\ny,pos\n", {}, "single label"),
        ("text,label\nx,pos\ny,\n", {}, "1 of 2 rows have no label"),
        ('text,label\n"unclosed,1\n', {}, "cannot read"),
    ],
)
def test_bad_local_files(
    tmp_path: Path, content: str | None, kwargs: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RnnlabError, match=message):
        load_raw(str(path), **kwargs)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(RnnlabError, match="reads"):
        load_raw(str(path))


class _FakeSplit(dict):
    """Enough of a datasets.Dataset: column access and .features."""

    def __init__(self, texts: list[str], labels: list[int], names: list[str]) -> None:
        super().__init__(text=texts, label=labels)
        label_feature = type("ClassLabel", (), {"names": names})()
        self.features = {"label": label_feature}


def test_hub_loading_keeps_the_official_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from rnnlab.config import DataConfig
    from rnnlab.data.pipeline import load_splits

    train_texts = [f"train review {i} {'good' if i % 2 else 'bad'}" for i in range(40)] + [
        "shared text"
    ]
    test_texts = [f"test review {i}" for i in range(10)] + ["shared text"]
    fake = {
        "train": _FakeSplit(train_texts, [i % 2 for i in range(41)], ["neg", "pos"]),
        "test": _FakeSplit(test_texts, [i % 2 for i in range(11)], ["neg", "pos"]),
        "unsupervised": _FakeSplit(["x"], [-1], ["neg", "pos"]),
    }
    calls: list[str] = []

    def load_dataset(name: str) -> dict[str, _FakeSplit]:
        calls.append(name)
        return fake

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # skip the reachability probe
    splits = load_splits(DataConfig(dataset="imdb", source="hub", max_len=None))
    assert calls == ["stanfordnlp/imdb"]
    assert len(splits.test) == 11  # the official test split is kept whole
    assert len(splits.train) + len(splits.val) == 40  # "shared text" left train for test
    assert abs(len(splits.val) - 4) <= 1 and splits.info["source"] == "hub"


def test_hub_failure_is_one_line_with_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    def load_dataset(name: str) -> None:
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RnnlabError, match="could not load rotten_tomatoes") as err:
        load_raw("rotten_tomatoes", source="hub")
    assert "\n" not in str(err.value) and "bundled" in str(err.value)


def test_garbage_parquet_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"\x00\x01 not parquet at all")
    with pytest.raises(RnnlabError, match="cannot read"):
        load_raw(str(path))
