"""rnnlab report: collection, narrative, escaping, bad input, the CLI (hand-written folders)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rnnlab import formatting
from rnnlab.cli import main
from rnnlab.diagnostics import Result
from rnnlab.diagnostics.embedding_grad import EmbeddingGradResult, ModelEmbeddingGrad
from rnnlab.diagnostics.gradient_flow_result import GradientFlowResult, ModelGradients
from rnnlab.diagnostics.hidden_size import HiddenSizeResult, HiddenSizeSummary
from rnnlab.diagnostics.hidden_states import (
    HiddenStatesResult,
    LabelStats,
    ModelStates,
    NormStats,
    TextInfo,
)
from rnnlab.diagnostics.padding import PaddingResult, Strategy
from rnnlab.diagnostics.seq_len import LengthSummary, SeqLenResult
from rnnlab.diagnostics.synthetic import SyntheticResult, SyntheticSummary
from rnnlab.diagnostics.timing_result import LinearFit, ModelTiming, ModeTiming, TimingResult
from rnnlab.errors import RnnlabError
from rnnlab.report import narrative
from rnnlab.report.collect import collect
from rnnlab.report.html import build_page, render

XSS = (
    '<script>document.title="pwned";window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
)


@functools.cache
def tiny_png() -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    fig.subplots().plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=30)
    return buffer.getvalue()


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def make_run(
    folder: Path,
    model: str,
    *,
    accuracy: float,
    macro_f1: float,
    seconds: float,
    tokens_per_s: float,
    dataset: str = "imdb",
    epochs: int = 2,
    status: str = "completed",
    matrix: list[list[int]] | None = None,
    recurrent: int = 1000,
    labels: list[str] | None = None,
) -> Path:
    """A run folder as rnnlab.runs writes it (the keys the report reads)."""
    kind = model
    matrix = matrix or [[40, 10], [15, 35]]
    labels = labels or ["negative", "positive"]
    history = [
        {
            "epoch": e,
            "train_loss": 0.7 - 0.1 * e,
            "train_accuracy": 0.5 + 0.1 * e,
            "val_loss": 0.69 - 0.05 * e,
            "val_accuracy": accuracy - 0.01 * (epochs - e),
            "val_macro_f1": macro_f1,
            "seconds": seconds,
            "train_tokens_per_s": tokens_per_s,
            "best": e == epochs,
        }
        for e in range(1, epochs + 1)
    ]
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in history) + "\n")
    (folder / "config.yaml").write_text(
        f"data:\n  dataset: {dataset}\n  max_len: 64\n  seed: 0\nmodel:\n  name: {model}\n"
        "train:\n  epochs: 2\n  seed: 0\n"
    )
    write_json(
        folder / "model_spec.json",
        {
            "kind": kind,
            "embed_dim": 16,
            "hidden_dim": 8,
            "num_layers": 1,
            "bidirectional": False,
            "name": model,
        },
    )
    write_json(folder / "labels.json", labels)
    (folder / "curves.png").write_bytes(tiny_png())
    f1 = [0.7, macro_f1 * 2 - 0.7]
    write_json(
        folder / "summary.json",
        {
            "name": folder.name,
            "status": status,
            "finished": "2026-01-01T00:00:00+0000",
            "model": {
                "name": model,
                "kind": kind,
                "parameters": {
                    "embedding": 20000,
                    "recurrent": recurrent,
                    "head": 18,
                    "total": 20000 + recurrent + 18,
                },
            },
            "test": {
                "task": "classification",
                "examples": 100,
                "accuracy": accuracy,
                "macro_f1": macro_f1,
                "per_class": {
                    name: {"precision": 0.5, "recall": 0.5, "f1": f1[i], "support": sum(matrix[i])}
                    for i, name in enumerate(labels)
                },
                "confusion": {"labels": labels, "matrix": matrix},
                "accuracy_by_length": [
                    {"lo": 0, "hi": 32, "count": 30, "accuracy": accuracy + 0.05},
                    {"lo": 32, "hi": None, "count": 70, "accuracy": accuracy - 0.02},
                ],
            },
            "epochs_run": epochs,
            "best_epoch": epochs,
            "seconds_per_epoch": seconds,
            "train_tokens_per_s": tokens_per_s,
            "device": "cpu (2 threads)",
            "seed": 0,
            "threads": 2,
            "deterministic": False,
            "dataset": {
                "dataset": dataset,
                "source": "bundled",
                "label_names": labels,
                "vocab_size": 1250,
                "sizes": {"train": 800, "val": 100, "test": 100},
                "train_tokens": 51200,
            },
            "versions": {"python": "3.11", "torch": "2.13.0", "numpy": "2", "rnnlab": "0.1.0"},
        },
    )
    return folder


SCORES = {
    "rnn": dict(accuracy=0.612, macro_f1=0.598, seconds=4.25, tokens_per_s=5321.0, recurrent=1000),
    "lstm": dict(accuracy=0.834, macro_f1=0.831, seconds=2.5, tokens_per_s=9050.0, recurrent=4000),
    "gru": dict(accuracy=0.801, macro_f1=0.79, seconds=3.0, tokens_per_s=7400.0, recurrent=3000),
}


def make_compare(root: Path, dataset: str = "imdb") -> Path:
    for model, scores in SCORES.items():
        make_run(root / model, model, dataset=dataset, **scores)  # type: ignore[arg-type]
    write_json(
        root / "compare.json",
        {"dataset": dataset, "models": list(SCORES), "rows": [{"model": m} for m in SCORES]},
    )
    (root / "compare_curves.png").write_bytes(tiny_png())
    return root


def gradient_models() -> list[ModelGradients]:
    models = []
    for label, ratio, decades in (("rnn", 0.003, 2.5), ("lstm", 0.42, 0.19), ("gru", 0.31, 0.25)):
        reading = "severe vanishing" if ratio < 0.01 else "well preserved"
        models.append(
            ModelGradients(
                label, label, "fresh", [ratio, 0.5, 1.0], [ratio, 0.5, 1.0], None,
                [ratio * 1e-3, 5e-4, 1e-3], [ratio, 0.5, 1.0], ratio, ratio, reading, reading,
                decades, decades, 1e-15,
            )
        )  # fmt: skip
    return models


def make_gradient_flow(folder: Path) -> Path:
    """A gradient-flow result with known numbers, saved as rnnlab.diagnostics writes it."""
    result = GradientFlowResult(
        "imdb", "test", 200, 32, list(range(32)), [0] * 32, "float64", "cpu", 0, [10, 100, 190],
        {"severe": 0.01, "vanishing": 0.1, "growing": 10.0}, gradient_models(),
    )  # fmt: skip
    return result.save(folder)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    make_compare(root / "compare")
    make_gradient_flow(root / "gradient-flow")
    write_json(
        root / "dataset.json",
        {
            "dataset": "imdb",
            "source": "bundled",
            "label_names": ["negative", "positive"],
            "vocab_size": 1250,
            "tokenizer": "regex",
            "max_len": 64,
            "duplicates_dropped": 3,
            "splits": {
                "train": {
                    "examples": 800,
                    "label_counts": {"negative": 400, "positive": 400},
                    "mean_tokens": 230.5,
                    "median_tokens": 170,
                    "p95_tokens": 610,
                    "max_tokens": 1500,
                    "unk_share": 0.0,
                    "truncated": 700,
                },
                "test": {
                    "examples": 100,
                    "label_counts": {"negative": 50, "positive": 50},
                    "mean_tokens": 228.0,
                    "median_tokens": 168,
                    "p95_tokens": 600,
                    "max_tokens": 1400,
                    "unk_share": 0.0123,
                    "truncated": 88,
                },
            },
            "length_histogram": {"edges": [0, 50, 100, 150], "counts": [10.0, 30.0, 60.0]},
            "examples": [{"text": f"A fine film. {XSS} The end.", "label": "positive"}],
        },
    )
    return root


def page_html(tmp_path: Path, *dirs: Path) -> str:
    out = render(list(dirs), tmp_path / "out" / "report.html")
    return out.read_text(encoding="utf-8")


# ----- collection ---------------------------------------------------------------------------------
def test_collect_finds_everything_recursively_in_compare_order(study: Path) -> None:
    c = collect([study])
    assert [r.model_name for r in c.main_runs] == ["rnn", "lstm", "gru"]
    assert len(c.compares) == 1 and c.compares[0].curves is not None
    assert [r.kind for r in c.results] == ["gradient_flow"]
    assert len(c.results[0].figures) == 2
    assert c.text_datasets() == ["imdb"]


def test_collect_single_run_and_duplicates(study: Path) -> None:
    run = study / "compare" / "lstm"
    c = collect([run, run, study / "compare"])
    assert sorted(r.model_name for r in c.runs) == ["gru", "lstm", "rnn"]


def test_runs_inside_a_result_folder_belong_to_it(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    seq_len_result().save(sweep)
    make_run(
        sweep / "runs" / "lstm-50", "lstm", accuracy=0.7, macro_f1=0.7, seconds=1, tokens_per_s=1
    )
    c = collect([sweep])
    assert c.main_runs == [] and c.runs_under(sweep)[0].model_name == "lstm"


def test_unfinished_and_failed_runs_are_noted(tmp_path: Path) -> None:
    make_run(tmp_path / "ok", "lstm", accuracy=0.7, macro_f1=0.7, seconds=1, tokens_per_s=1)
    unfinished = tmp_path / "half"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("data: {}\n")
    (unfinished / "metrics.jsonl").write_text("")
    write_json(
        tmp_path / "bad" / "summary.json",
        {"name": "bad", "status": "failed", "error": "loss became nan"},
    )
    html = page_html(tmp_path, tmp_path)
    assert "unfinished run" in html and "loss became nan" in html


# ----- narrative: numbers come from the JSON ------------------------------------------------------
def test_comparison_sentences_use_the_summary_numbers(study: Path) -> None:
    page = build_page(collect([study]))
    training = next(s for s in page.sections if s.id == "training")
    text = " ".join(training.lead)
    assert "Highest test accuracy: lstm with 83.4% (macro-F1 0.8310); gru 80.1%, rnn 61.2%." in text
    assert (
        "Fastest: lstm at 2.50 s per epoch (9,050 tokens/s); slowest: rnn at 4.25 s (1.7x as long)"
        in text
    )
    for number in re.findall(r"\d+\.\d+%", text):
        value = float(number.rstrip("%")) / 100
        assert any(abs(value - s) < 1e-3 for s in [0.612, 0.834, 0.801, 0.5]), (
            f"{number} is not a saved accuracy"
        )


def test_confusion_sentences_match_the_matrix(study: Path) -> None:
    page = build_page(collect([study]))
    figure = next(f for s in page.sections for f in s.figures if f.title.startswith("Confusion"))
    joined = " ".join(figure.sentences)
    # matrix [[40, 10], [15, 35]]: 75 of 100 correct, most common mistake positive -> negative
    assert "lstm: 75 of 100 correct" in joined
    assert "“positive” read as “negative” (15 of 50 such texts)" in joined


def test_gradient_flow_sentence_and_table(study: Path) -> None:
    page = build_page(collect([study]))
    section = next(s for s in page.sections if s.id == "gradient-flow")
    captions = " ".join(" ".join(f.sentences) for f in section.figures)
    assert "rnn keeps 0.3%; lstm keeps 42.0%; gru keeps 31.0%" in captions
    assert "Gradient at step t=10 as a share of the gradient at t=190" in captions
    assert "rnn 2.5, lstm 0.19, gru 0.25" in " ".join(section.figures[1].sentences)
    assert [f.title for f in section.figures] == [
        "Gradient norm at every time step (linear scale)",
        "Gradient norm at every time step (log scale)",
    ]
    assert section.tables[0].rows[0][:2] == ["rnn", "3.00e-06"]


def test_dataset_section_from_dataset_json(study: Path) -> None:
    page = build_page(collect([study]))
    dataset = next(s for s in page.sections if s.id == "dataset")
    assert "1.23% of the test tokens are <unk>" in " ".join(dataset.lead)
    assert (
        dataset.figures
        and "Half the texts have at most 170 tokens; 95% at most 610."
        in dataset.figures[0].sentences
    )
    assert dataset.examples and XSS in dataset.examples[0][1]


def test_parameter_sentences(study: Path) -> None:
    page = build_page(collect([study]))
    models = next(s for s in page.sections if s.id == "models")
    text = " ".join(models.lead)
    assert "embedding holds 20,000 of 21,018 parameters (95.2%)" in text
    assert "LSTM 4.00x, GRU 3.00x" in text
    assert models.tables[0].rows[1][-1] == "24,018"


def test_formatting_helpers() -> None:
    assert formatting.pct(0.475) == "47.5%"
    assert formatting.pct(0.00031) == "0.031%"
    assert formatting.cell(None) == "—" and formatting.cell(0.5) == "0.5000"
    assert formatting.sig(0.000123) == "0.000123" and formatting.count(9050.4) == "9,050"
    assert narrative.curves("m", [], None) == ["m recorded no finished epoch."]


# ----- the page -----------------------------------------------------------------------------------
def test_page_is_self_contained_and_escaped(study: Path, tmp_path: Path) -> None:
    config = study / "compare" / "rnn" / "config.yaml"
    config.write_text(config.read_text() + "# <b>bold</b> </pre><script>x()</script>\n")
    html = page_html(tmp_path, study)
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert "&lt;script&gt;document.title=&#34;pwned&#34;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &lt;/pre&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "Content-Security-Policy" in html and "script-src 'none'" in html
    for section in ("dataset", "models", "training", "gradient-flow", "accuracy", "environment"):
        assert f'id="{section}' in html or section == "accuracy"
    assert "@media print" in html and "break-inside: avoid" in html
    assert "overflow-x: auto" in html and 'name="viewport"' in html


def test_template_never_marks_data_safe() -> None:
    from importlib import resources

    text = (resources.files("rnnlab.report") / "templates" / "report.html.j2").read_text()
    assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text


def test_shaded_texts_escape_hostile_reviews(tmp_path: Path) -> None:
    """Token attributions: review text, model names and label names are shown as text, and
    the only inline styles are background colours built from numbers."""
    from rnnlab.diagnostics.attribution_result import (
        AttributionResult,
        ModelAttribution,
        TextAttribution,
    )

    tokens = ["a", "fine", XSS, "film", '"><b onmouseover=alert(1)>']
    scores = [0.1, 0.9, -0.5, 0.0, -1.2]
    text = TextAttribution(7, 1, 1, 0.9, 2.2, 0.0, 1e-4, tokens, scores)
    models = [
        ModelAttribution(label, kind, "fresh", [0.1] * 10, [text], 0.5)
        for label, kind in (("rnn", "rnn"), (f"lstm{XSS}", "lstm"))
    ]
    result = AttributionResult(
        "imdb", "test", 1, 10, 20, 8, "predicted", 1, ["negative", f"positive{XSS}"], 0, "cpu",
        models=models,
    )  # fmt: skip
    html = page_html(tmp_path, result.save(tmp_path / "attribution"))
    assert 'id="attribution"' in html and 'class="shaded"' in html
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert "<b onmouseover" not in html and not re.search(r"<img[^>]*onerror", html)
    assert "&lt;script&gt;document.title=&#34;pwned&#34;" in html
    styles = re.findall(r'style="([^"]*)"', html)
    assert len([s for s in styles if s]) >= 6
    assert all(re.fullmatch(r"(background: rgba\(\d+, \d+, \d+, [0-9.]+\))?", s) for s in styles)
    spans = re.findall(r'<span style="[^"]*" title="[^"]*">([^<]*)</span>', html)
    assert spans[:5] == ["a", "fine", html_escape(XSS), "film", html_escape(tokens[-1])]


def test_user_strings_cannot_reorder_the_page(tmp_path: Path) -> None:
    """A right-to-left override (U+202E) in a label, a run name or a model name is shown as
    [U+202E] and reorders nothing; what users name sits in <bdi> or dir="auto"."""
    from rnnlab.report.html import BIDI_CONTROLS

    rlo = "\u202e"
    run = make_run(
        tmp_path / f"gru{rlo}run", f"gru{rlo}x", labels=[f"neg{rlo}ative", "positive\u2067"],
        **SCORES["gru"],  # type: ignore[arg-type]
    )  # fmt: skip
    html = page_html(tmp_path, run)
    assert not BIDI_CONTROLS.search(html)
    assert "neg[U+202E]ative" in html and "positive[U+2067]" in html
    assert "gru[U+202E]run" in html and "gru[U+202E]x" in html
    assert re.search(r"<th[^>]*><bdi>neg\[U\+202E\]ative</bdi></th>", html)  # a column
    assert re.search(r"<td[^>]*><bdi>gru\[U\+202E\]x</bdi></td>", html)  # a row
    assert '<h1 dir="auto">' in html


def html_escape(text: str) -> str:
    import markupsafe

    return str(markupsafe.escape(text))


def test_tables_hold_the_saved_numbers(study: Path, tmp_path: Path) -> None:
    html = page_html(tmp_path, study)
    row = re.search(r'<tr data-row="lstm">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*><bdi>(.*?)</bdi></td>", row.group(1))
    assert cells[:6] == ["lstm", "0.8340", "—", "0.8310", "2.50", "9,050"]  # no interval saved


def test_sections_only_when_results_exist(tmp_path: Path) -> None:
    make_run(tmp_path / "one", "lstm", accuracy=0.7, macro_f1=0.7, seconds=1, tokens_per_s=1)
    page = build_page(collect([tmp_path / "one"]))
    ids = [s.id for s in page.sections]
    assert ids == ["certainty", "dataset", "models", "training", "seq-len", "environment"]
    assert not page.warnings


def test_unknown_result_kind_still_shows_its_figures(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    write_json(folder / "result.json", {"kind": "brand-new <thing>"})
    (folder / "plot.png").write_bytes(tiny_png())
    page = build_page(collect([folder]))
    assert page.sections[0].title == "Brand new <thing>" and len(page.sections[0].figures) == 1
    assert "Brand new &lt;thing&gt;" in page_html(tmp_path, folder)


def test_mixed_datasets_are_allowed_but_flagged(tmp_path: Path) -> None:
    make_run(tmp_path / "a", "lstm", accuracy=0.7, macro_f1=0.7, seconds=1, tokens_per_s=1)
    make_run(
        tmp_path / "b",
        "gru",
        dataset="bbc_news",
        accuracy=0.9,
        macro_f1=0.9,
        seconds=1,
        tokens_per_s=1,
    )
    page = build_page(collect([tmp_path / "a", tmp_path / "b"]))
    assert page.warnings and "imdb and bbc_news" in page.warnings[0]
    assert "dataset" in next(s for s in page.sections if s.id == "training").tables[0].columns


def test_synthetic_runs_do_not_count_as_another_dataset(tmp_path: Path) -> None:
    make_run(tmp_path / "a", "lstm", accuracy=0.7, macro_f1=0.7, seconds=1, tokens_per_s=1)
    make_run(
        tmp_path / "s",
        "gru",
        dataset="synthetic:remember-first",
        accuracy=0.9,
        macro_f1=0.9,
        seconds=1,
        tokens_per_s=1,
    )
    assert not build_page(collect([tmp_path])).warnings


# ----- bad input ----------------------------------------------------------------------------------
def test_no_folders(tmp_path: Path) -> None:
    with pytest.raises(RnnlabError, match="no run folders given"):
        render([], tmp_path / "r.html")


def test_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(RnnlabError, match="is not a run folder"):
        render([tmp_path / "empty"], tmp_path / "r.html")
    with pytest.raises(RnnlabError, match="does not exist"):
        render([tmp_path / "missing"], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_damaged_json_is_one_line(study: Path, tmp_path: Path) -> None:
    (study / "compare" / "gru" / "summary.json").write_text("{not json")
    with pytest.raises(RnnlabError, match=r"summary.json is not valid JSON"):
        render([study], tmp_path / "r.html")


def test_output_that_cannot_be_written(study: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(RnnlabError, match="is not a folder"):
        render([study], blocker / "report.html")
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(RnnlabError, match="is a folder"):
        render([study], tmp_path / "dir.html")


def test_failure_leaves_no_half_written_file(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnlab.report import html as html_module

    out = tmp_path / "keep" / "report.html"
    out.parent.mkdir()
    old = '<meta name="generator" content="rnnlab report"> old report'
    out.write_text(old)

    def broken(path: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", broken)
    with pytest.raises(RnnlabError, match="no space left on the device; free some space"):
        html_module.render([study], out)
    monkeypatch.undo()
    assert out.read_text() == old
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


# ----- CLI ----------------------------------------------------------------------------------------
def test_cli_report(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(study), "-o", str(out), "--title", "My <study>"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert "<title>My &lt;study&gt;</title>" in out.read_text()
    assert out.stat().st_mode & 0o044  # readable by others, like any file the user writes


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no run folders given"),
        (["{tmp}/nothing-here"], "does not exist"),
        (["{tmp}/plain"], "is not a run folder"),
    ],
)
def test_cli_report_bad_input(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").mkdir()
    out = tmp_path / "r.html"
    code = main(["report", *(a.format(tmp=tmp_path) for a in args), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


# ----- one section per diagnostic kind: sentences carry the numbers of result.json ------------
def seq_len_result() -> SeqLenResult:
    return SeqLenResult(
        "imdb", [50, 400], ["rnn"], [0], {"epochs": 1, "batch_size": 64, "limit": 1000}, {},
        summary=[LengthSummary("rnn", 50, 1, 0.61, 0.0, 2.0, 0.0),
                 LengthSummary("rnn", 400, 1, 0.55, 0.0, 9.5, 0.0)],
    )  # fmt: skip


def norm(mean: float, var: float) -> NormStats:
    return NormStats(var, 0.0, mean, 0.0)


CASES: dict[str, tuple[Result, list[str]]] = {
    "embedding_grad": (
        EmbeddingGradResult(
            "imdb", "test", [50, 400], 8, list(range(8)), "float32", "cpu", 0,
            models=[ModelEmbeddingGrad("rnn", "rnn", "fresh", [0.02, 0.021], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.7, 0.7]),
                    ModelEmbeddingGrad("lstm", "lstm", "fresh", [0.01, 0.035], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.7, 0.7])],
        ),
        ["rnn 1.05x, lstm 3.50x", "From texts cut to 50 tokens to texts cut to 400"],
    ),
    "hidden_states": (
        HiddenStatesResult(
            "imdb", "test", 1, 100, 400, 0, "cpu", ["negative", "positive"],
            [TextInfo(0, 0, "negative", 120), TextInfo(1, 1, "positive", 300)],
            [ModelStates("lstm", "lstm", "fresh", [[0.7] * 120, [0.8] * 300], [[2.5] * 120, [2.5] * 300],
                         norm(0.731, 0.0123), norm(2.5, 0.4),
                         {"negative": LabelStats(norm(0.7, 0.01), None), "positive": LabelStats(norm(0.8, 0.01), None)})],
        ),
        ["2 imdb test texts, 120–300 steps.", "lstm 0.731", "lstm 0.0123",
         "negative 0.7, positive 0.8", "lstm: mean ||c_t|| 2.5, variance over time 0.4"],
    ),
    "seq_len": (
        seq_len_result(),
        ["rnn 61.0% at max_len=50 and 55.0% at max_len=400 (best 61.0% at 50)",
         "rnn 2.0 s to 9.5 s"],
    ),
    "hidden_size": (
        HiddenSizeResult(
            "imdb", [16, 128], ["lstm"], [0], 200, [0, 100, 200], {"epochs": 1, "limit": 100}, {},
            summary=[HiddenSizeSummary("lstm", 16, 1, 1000, 0.7, 0.0, 1.0, [0.8, 0.7, 0.65]),
                     HiddenSizeSummary("lstm", 128, 1, 9000, 0.8, 0.0, 1.0, [0.85, 0.8, 0.77])],
        ),
        ["lstm 70.0% at H=16 and 80.0% at H=128", "lstm H=16 65.0%, lstm H=128 77.0%"],
    ),
    "timing": (
        TimingResult(
            "cpu", 2, 64, [100, 800], ["padded"], 1, 5, 0,
            [ModelTiming("lstm", "lstm", "fresh", {}, [
                ModeTiming("padded", [0.004, 0.03], [0.01, 0.082], [[0.004], [0.03]], [[0.01], [0.082]],
                           LinearFit(None, None, None), LinearFit(0.0001, 0.0, 0.998), "on"),
                ModeTiming("padded", [0.004, 0.03], [0.02, 0.22], [[0.004], [0.03]], [[0.02], [0.22]],
                           LinearFit(None, None, None), LinearFit(0.0003, 0.0, 0.998), "off"),
            ])],
            ["on", "off"], "Test CPU, AVX512",
        ),
        ["multiplies the padded forward+backward time by: lstm 8.20x",
         "lstm 0.100 ms per step, R² 1.00",
         "flushing subnormal floats to zero cut the padded backward time at T=800 by lstm 72.6%"],
    ),
    "padding": (
        PaddingResult(
            "imdb", "train", 64, 400, 0, 1000, 100_000,
            [Strategy("plain", 16, 173_000, 73_000, 0.423, 4000, 43.0),
             Strategy("bucketed", 16, 101_000, 1_000, 0.012, 4000, 25.0)],
            packed_tail_share=0.25,
        ),
        ["Random batches are 42.3% padding; length-bucketed batches 1.2%.",
         "in 25.0% of their serial steps"],
    ),
    "synthetic": (
        SyntheticResult(
            "remember-first", "accuracy", 0.5, [10, 100], ["rnn"], [0],
            {"epochs": 1, "num_examples": 100, "hidden_dim": 8, "batch_size": 8, "lr": 0.01},
            summary=[SyntheticSummary("rnn", 10, 1, 0.99, 0.0, 0.1, 0.0, 0.1, 1.0),
                     SyntheticSummary("rnn", 100, 1, 0.501, 0.0, 1.5e-9, 0.0, 1e-9, 1.0)],
            reading=["rnn at chance from T=100"],
        ),
        ["rnn 99.0% at T=10, 50.1% at T=100", "Guessing scores 50.0%.",
         "In short: rnn at chance from T=100.", "At T=100: rnn 1.50e-09."],
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_result_kind_is_read_into_sentences(kind: str, tmp_path: Path) -> None:
    result, expected = CASES[kind]
    assert result.kind == kind
    folder = result.save(tmp_path / kind)
    page = build_page(collect([folder]))
    text = " ".join(
        " ".join(s.lead)
        + " ".join(" ".join(f.sentences) for f in s.figures)
        + " ".join(" ".join(t.notes) for t in s.tables)
        for s in page.sections
    )
    for sentence in expected:
        assert sentence in text, f"{kind}: {sentence!r} not in {text!r}"
    section = page.sections[0]
    assert section.tables, f"{kind}: no table"
    assert [f.title for f in section.figures] == [spec.title for spec in result.figures()]


def test_a_result_json_missing_a_field_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "gf"
    write_json(folder / "result.json", {"kind": "gradient_flow", "dataset": "imdb"})
    with pytest.raises(RnnlabError, match="does not hold a gradient_flow result"):
        render([folder], tmp_path / "r.html")


def test_results_of_earlier_versions_get_their_section(tmp_path: Path) -> None:
    raw = seq_len_result().to_dict()
    write_json(tmp_path / "old" / "result.json", {**raw, "kind": "length_sweep"})
    page = build_page(collect([tmp_path / "old"]))
    assert page.sections[0].id == "seq-len"


def test_length_histogram_sentence_names_the_lost_part() -> None:
    head = " ".join(narrative.length_histogram([0, 100, 200], [6, 4], 150, 90, 180, 4, "head"))
    tail = " ".join(narrative.length_histogram([0, 100, 200], [6, 4], 150, 90, 180, 4, "tail"))
    assert "40.0% of them (4 of 10)" in head or "40% of them (4 of 10)" in head
    assert "lose their end" in head and "lose their beginning" in tail


def test_report_replaces_only_an_earlier_report(study: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\nkeep me,positive\n")
    with pytest.raises(RnnlabError, match=r"is not an rnnlab report; .* --force"):
        render([study], data)
    assert data.read_text() == "text,label\nkeep me,positive\n"
    page = render([study], tmp_path / "r.html")
    render([study], page)  # an earlier report may be replaced
    render([study], data, force=True)
    assert "rnnlab report" in data.read_text()


def test_report_of_unfinished_runs_only_says_how_to_resume(tmp_path: Path) -> None:
    run = tmp_path / "half"
    run.mkdir()
    (run / "config.yaml").write_text("data: {}\n")
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(RnnlabError, match=r"nothing finished to report.*--resume"):
        render([run], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_readings_come_from_paired_tests_and_the_front_box_says_how_sure(
    tmp_path: Path, write_csv: Any
) -> None:
    from rnnlab import api
    from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    rows: list[list[Any]] = [["text", "label"]]
    for i in range(300):
        label = "positive" if i % 2 else "negative"
        words = "good great fun" if label == "positive" else "bad dull awful"
        rows.append([f"the film {words} review {i}", label])
    config = RunConfig(
        DataConfig(dataset=str(write_csv(rows, "r.csv")), max_len=16),
        ModelConfig(embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=2, batch_size=16, lr=1e-2, progress=False),
    )
    result = api.compare(config, ["rnn", "gru"], out=tmp_path, name="c", verbose=False)
    (pair,) = result.paired
    assert pair["examples"] == result.rows[0]["test_examples"] == 30
    lo, hi = result.rows[0]["test_accuracy_interval"]
    assert lo <= result.rows[0]["test_accuracy"] <= hi
    page = build_page(collect([tmp_path / "c"]))
    training = next(s for s in page.sections if s.id == "training")
    lead = " ".join(training.lead)
    assert "Paired on the same test texts (McNemar's test; a difference" in lead
    won = "rnn beats gru" in lead or "gru beats rnn" in lead
    assert won == (pair["p_value"] < 0.05) and won != ("not settled with 1 seed" in lead)
    intervals = next(f for f in training.figures if f.title == "Test accuracy with 95% intervals")
    assert (
        intervals.src.startswith("data:image/png;base64,") and "McNemar" in intervals.sentences[0]
    )
    box = next(s for s in page.sections if s.id == "certainty")
    assert page.sections[0] is box and ("test texts", "30") in box.facts
    assert ("seeds of the compared models", "1 (0)") in box.facts
    assert "p < 0.05" in " ".join(box.lead)
