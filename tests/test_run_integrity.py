"""A damaged or edited run folder never loads silently: flipped bits, a vocabulary that does
not fit the model, repeated tokens, and a config.yaml edited before --resume are one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from rnnlab import api
from rnnlab.cli import main
from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rnnlab.errors import RnnlabError
from rnnlab.layout import CHECKPOINT, CONFIG, ENCODER, LABELS, MODEL, SUMMARY


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished run (2 epochs, so a checkpoint to resume from is kept)."""
    from conftest import sentiment_rows  # the suite's toy corpus, written once for the module

    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "reviews.csv"
    corpus.write_text("\n".join(",".join(map(str, row)) for row in sentiment_rows(120, 0)))
    config = RunConfig(
        DataConfig(dataset=str(corpus), max_len=20),
        ModelConfig(name="gru", embed_dim=8, hidden_dim=8),
        TrainConfig(epochs=2, batch_size=16, progress=False, patience=None, threads=1),
    )
    return api.train(config, out=root, name="run", verbose=False).run_dir


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def flip_a_bit(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    path.write_bytes(bytes(data))


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_flipped_bit_in_the_weights_is_refused(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_a_bit(copy / MODEL)
    err = one_line_error(["predict", str(copy), "good fun film"], capsys)
    assert "model.pt is damaged" in err and "checksum" in err and "train the run again" in err
    with pytest.raises(RnnlabError, match=r"model\.pt is damaged"):
        api.evaluate_run(copy, split="test")


def test_a_flipped_bit_in_the_checkpoint_stops_the_resume(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (copy / SUMMARY).unlink()  # as a kill during training leaves it: resumable
    flip_a_bit(copy / CHECKPOINT)
    err = one_line_error(["train", "--resume", str(copy)], capsys)
    assert "checkpoint.pt is damaged" in err and "start over with --overwrite" in err


def test_a_vocabulary_that_does_not_fit_the_model_is_refused(copy: Path) -> None:
    vocab = next((copy / ENCODER).glob("vocab*.json"))
    raw = json.loads(vocab.read_text())
    edits: list[Callable[[list[str]], list[str]]] = [
        lambda itos: itos[:5],  # cut: fewer tokens than embedding rows
        lambda itos: [*itos[:-1], itos[2]],  # a word listed twice, same length
    ]
    for edit in edits:
        vocab.write_text(json.dumps({**raw, "itos": edit(list(raw["itos"]))}))
        with pytest.raises(RnnlabError, match=r"rows|twice") as caught:
            api.predict(copy, "good fun film")
        assert "train the run again" in str(caught.value)


def test_an_edited_config_is_refused_before_resuming(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load((copy / CONFIG).read_text())
    config["model"]["name"] = "lstm"
    (copy / CONFIG).write_text(yaml.safe_dump(config))
    (copy / SUMMARY).unlink()  # as a kill during training leaves it: resumable
    err = one_line_error(["train", "--resume", str(copy)], capsys)
    assert "holds another model than" in err and "undo the edit" in err


def test_reads_are_bounded_and_typed(
    copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = copy / LABELS
    labels.unlink()
    labels.symlink_to("/dev/urandom")  # an endless file: refused without reading it
    err = one_line_error(["predict", str(copy), "good fun film"], capsys)
    assert "labels.json" in err
    labels.unlink()
    labels.write_text('["negative", "positive"]')

    summary = json.loads((copy / SUMMARY).read_text())
    out = str(tmp_path / "report.html")
    (copy / SUMMARY).write_text("[" * 100_000 + "]" * 100_000)  # nested past the parser
    assert "summary.json" in one_line_error(["report", str(copy), "--out", out], capsys)
    for field, value in (("model", "x"), ("test", {"accuracy": "abc"})):
        (copy / SUMMARY).write_text(json.dumps({**summary, field: value}))
        err = one_line_error(["report", str(copy), "--out", out], capsys)
        assert "summary.json" in err and "must be" in err
