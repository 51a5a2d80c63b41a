from __future__ import annotations

import json
import sys
import types
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
    """Fast: one short connection check, and no download attempt (with its retries) after it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked: list[float] = []
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=3.0: asked.append(timeout))
    never = types.ModuleType("datasets")
    never.load_dataset = lambda *a, **k: pytest.fail("a download was tried")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", never)
    with pytest.raises(RnnlabError, match="cannot reach the Hugging Face Hub") as err:
        load_raw("ag_news")
    assert asked == [3.0]
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


# ----- careless files: encodings, columns, labels, long fields --------------------------------
def labelled(n: int = 30) -> list[tuple[str, str]]:
    return [
        (f"review {i} was {'good' if i % 2 else 'bad'}", "pos" if i % 2 else "neg")
        for i in range(n)
    ]


def csv_bytes(
    rows: list[tuple[str, str]], header: str = "text,label", encoding: str = "utf-8"
) -> bytes:
    import csv
    import io

    out = io.StringIO(newline="")
    out.write(header + "\n")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode(encoding)


def test_latin1_file_fails_naming_the_line_and_reads_with_its_encoding(tmp_path: Path) -> None:
    rows = labelled()
    rows[4] = ("un café très naïf", "neg")
    path = tmp_path / "latin.csv"
    path.write_bytes(csv_bytes(rows, encoding="latin-1"))
    with pytest.raises(RnnlabError, match=r"line 6 is not valid utf-8 .*--encoding latin-1") as err:
        load_raw(str(path))
    assert "\n" not in str(err.value)
    texts = load_raw(str(path), encoding="latin-1").splits["all"][0]
    assert texts[4] == "un café très naïf"
    assert not any("b'" in t or "\\x" in t for t in texts)


def test_cp1252_and_utf16_and_bom(tmp_path: Path) -> None:
    rows = [*labelled(), ("“smart quotes”", "pos")]
    path = tmp_path / "win.csv"
    path.write_bytes(csv_bytes(rows, encoding="cp1252"))
    assert load_raw(str(path), encoding="cp1252").splits["all"][0][-1] == "“smart quotes”"
    path.write_bytes(csv_bytes(rows, encoding="utf-16"))
    with pytest.raises(RnnlabError, match="UTF-16 byte-order mark; give --encoding utf-16"):
        load_raw(str(path))
    assert load_raw(str(path), encoding="utf-16").splits["all"][0][-1] == "“smart quotes”"
    path.write_bytes(csv_bytes(rows, encoding="utf-8-sig"))  # Excel's "CSV UTF-8"
    raw = load_raw(str(path))
    assert raw.info["text_column"] == "text" and raw.splits["all"][0][-1] == "“smart quotes”"


def test_jsonl_in_latin1(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"text": t, "label": y}, ensure_ascii=False) for t, y in labelled()]
    lines[2] = json.dumps({"text": "déjà vu", "label": "pos"}, ensure_ascii=False)
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(RnnlabError, match=r"line 3 is not valid utf-8.*--encoding latin-1"):
        load_raw(str(path))
    assert load_raw(str(path), encoding="latin-1").splits["all"][0][2] == "déjà vu"


def test_unknown_encoding_is_one_line() -> None:
    from rnnlab.config import DataConfig

    for name in ("klingon", "rot13", ""):
        with pytest.raises(RnnlabError, match="unknown text encoding"):
            DataConfig(encoding=name)
        with pytest.raises(RnnlabError, match="unknown text encoding"):
            load_raw("x.csv", encoding=name)


@pytest.mark.parametrize("missing", ["NaN", "nan", "None", "null", "", "  ", "N/A"])
def test_missing_labels_in_csv_are_refused_with_a_count(tmp_path: Path, missing: str) -> None:
    rows = labelled()
    rows[6] = (rows[6][0], missing)
    rows[9] = (rows[9][0], missing)
    path = tmp_path / "d.csv"
    path.write_bytes(csv_bytes(rows))
    with pytest.raises(RnnlabError, match=r"2 of 30 rows have no label .*first is data row 7"):
        load_raw(str(path))


def test_missing_labels_in_jsonl_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = [json.dumps({"text": t, "label": y}) for t, y in labelled()]
    lines += ['{"text": "x", "label": NaN}', '{"text": "y", "label": null}', '{"text": "z"}']
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RnnlabError, match=r"3 of 33 rows have no label .*first is line 31"):
        load_raw(str(tmp_path / "d.jsonl"))
    texts = [t for t, _ in labelled()]
    floats = [float(i % 2) for i in range(30)]
    floats[3] = float("nan")
    pq.write_table(pa.table({"text": texts, "label": floats}), tmp_path / "nan.parquet")
    with pytest.raises(RnnlabError, match=r"1 of 30 rows have no label .*first is row 4"):
        load_raw(str(tmp_path / "nan.parquet"))
    strings = [y for _, y in labelled()]
    strings[0] = None  # type: ignore[call-overload]
    pq.write_table(pa.table({"text": texts, "label": strings}), tmp_path / "none.parquet")
    with pytest.raises(RnnlabError, match="1 of 30 rows have no label"):
        load_raw(str(tmp_path / "none.parquet"))


def test_numeric_labels_that_are_not_classes_are_refused(tmp_path: Path) -> None:
    texts = [f"text number {i}" for i in range(300)]
    path = tmp_path / "d.csv"
    path.write_bytes(csv_bytes([(t, f"{(i * 7919) % 1000 / 37:.3f}") for i, t in enumerate(texts)]))
    with pytest.raises(
        RnnlabError, match=r"'label' holds 300 distinct numbers in 300 rows.*regression"
    ):
        load_raw(str(path))
    path.write_bytes(csv_bytes([(t, str(i)) for i, t in enumerate(texts)]))
    with pytest.raises(RnnlabError, match=r"300 distinct numbers in 300 rows.*not classes"):
        load_raw(str(path))
    path.write_bytes(csv_bytes([(t, f"{t} x") for t in texts]))  # a text column as labels
    with pytest.raises(RnnlabError, match=r"300 distinct values in 300 rows; that looks like text"):
        load_raw(str(path))


def test_few_numeric_classes_are_fine(tmp_path: Path) -> None:
    texts = [f"text number {i}" for i in range(300)]
    path = tmp_path / "d.csv"
    path.write_bytes(csv_bytes([(t, f"{1 + (i % 9) / 2}") for i, t in enumerate(texts)]))
    raw = load_raw(str(path))  # half-star ratings: 9 classes
    assert raw.label_names == ["1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"]
    path.write_bytes(csv_bytes([(t, f"{i % 3}.0") for i, t in enumerate(texts)]))
    assert load_raw(str(path)).label_names == ["0", "1", "2"]
    path.write_bytes(csv_bytes([(t, str([10, 9, 100][i % 3])) for i, t in enumerate(texts)]))
    raw = load_raw(str(path))  # numbers sort as numbers
    assert raw.label_names == ["9", "10", "100"] and raw.splits["all"][1][:3].tolist() == [1, 0, 2]
    lines = [
        json.dumps({"text": t, "label": i % 2 if i % 3 else str(i % 2)})
        for i, t in enumerate(texts)
    ]
    (tmp_path / "mixed.jsonl").write_text("\n".join(lines))  # 1 and "1" are one class
    assert load_raw(str(tmp_path / "mixed.jsonl")).label_names == ["0", "1"]


def test_duplicated_columns_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "text,label,text\n" + "".join(f"{t},{y},other {i}\n" for i, (t, y) in enumerate(labelled()))
    )
    with pytest.raises(RnnlabError, match="has 2 columns named 'text'; rename them"):
        load_raw(str(path))
    path.write_text("text,label,x,x\n" + "".join(f"{t},{y},1,2\n" for t, y in labelled()))
    assert load_raw(str(path)).label_names == ["neg", "pos"]  # unused duplicates do no harm
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "x", "text": "b"}\n')
    with pytest.raises(RnnlabError, match="line 1 has the key 'text' twice"):
        load_raw(str(tmp_path / "d.jsonl"))


def test_long_fields_are_read_whole(tmp_path: Path) -> None:
    long_text = "word " * 800_000  # 4 MB in one cell, past pyarrow's 1 MB block
    rows = labelled()
    rows[5] = (long_text, "pos")
    (tmp_path / "d.csv").write_bytes(csv_bytes(rows))
    assert load_raw(str(tmp_path / "d.csv")).splits["all"][0][5] == long_text
    lines = [json.dumps({"text": t, "label": y}) for t, y in rows]
    (tmp_path / "d.jsonl").write_text("\n".join(lines))
    assert load_raw(str(tmp_path / "d.jsonl")).splits["all"][0][5] == long_text


def test_texts_are_kept_as_written(tmp_path: Path) -> None:
    rows = (
        [("1e5", "a"), ("007", "b"), ("NaN", "a"), ("true", "b"), ("", "a")]
        + [(str(i), "b") for i in range(20_000)]
        + [("words come late", "a")]
    )  # a "numeric" column past the first block
    (tmp_path / "d.csv").write_bytes(csv_bytes(rows))
    texts = load_raw(str(tmp_path / "d.csv")).splits["all"][0]
    assert texts[:5] == ["1e5", "007", "NaN", "true", ""] and texts[-1] == "words come late"


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("d.csv", "text,label\n" + "a,b\n" * 3, {"label_column": "text"}, "both 'text'"),
        ("d.csv", "text,label\n,pos\n ,neg\n", {}, "text column 'text' is empty in all 2 rows"),
        ("d.tsv", "text,label\na,pos\nb,neg\n", {}, "looks comma-separated: name it .csv"),
        ("d.csv", "text\tlabel\na\tpos\nb\tneg\n", {}, "looks tab-separated: name it .tsv"),
        ("d.csv", "text;label\na;pos\nb;neg\n", {}, "separated by ';'"),
        ("d.csv", "text,label\na,pos\nb,c,neg\nd,pos\n", {}, r"line 3 has 3 fields, the header 2"),
        ("d.csv", 'text,label\na,pos\n"b,neg\n', {}, "line 3 has an unclosed double quote"),
        (
            "d.jsonl",
            '{"text": "a", "label": 1}\n{"text": "b", label: 0}\n',
            {},
            "line 2 is not valid JSON",
        ),
        ("d.jsonl", '[{"text": "a", "label": 1}]\n', {}, "looks like one JSON array"),
        ("d.jsonl", '{"text": "a", "label": 1}\n"b"\n', {}, "line 2 holds a JSON string"),
        ("d.jsonl", '{"text": {"t": "a"}, "label": 1}\n', {}, "text column 'text' holds objects"),
        ("d.jsonl", '{"text": "a", "label": [1]}\n', {}, "label column 'label' holds lists"),
    ],
)
def test_more_careless_files(
    tmp_path: Path, name: str, content: str, kwargs: dict[str, str], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(RnnlabError, match=message) as err:
        load_raw(str(path), **kwargs)
    assert "\n" not in str(err.value)


def test_case_and_space_in_default_column_names(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("Review , Sentiment\ngreat,positive\nawful,negative\n")
    raw = load_raw(str(tmp_path / "d.csv"))
    assert raw.info["text_column"] == "Review " and raw.label_names == ["negative", "positive"]


def test_parquet_binary_nested_and_explicit_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["café au lait", "plain tea"]
    table = pa.table(
        {
            "text": pa.array([t.encode("latin-1") for t in texts], pa.binary()),
            "label": ["a", "b"],
            "tags": [["x"], ["y"]],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(RnnlabError, match=r"row 1 of column 'text' is not valid utf-8.*--encoding"):
        load_raw(str(tmp_path / "d.parquet"))
    assert load_raw(str(tmp_path / "d.parquet"), encoding="latin-1").splits["all"][0] == texts
    with pytest.raises(RnnlabError, match="text column 'tags' holds lists"):
        load_raw(str(tmp_path / "d.parquet"), text_column="tags")
