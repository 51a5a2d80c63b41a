"""A full disk, a read-only file system, no permission: checked before any computing where it
can be, and one line (path and fix), exit 2, no traceback, nothing finished lost wherever it
happens (issue 26, "Disk and permission errors"). Simulated by making the write path raise
OSError(errno.ENOSPC / EROFS / EACCES), so the tests run anywhere, as any user."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rnnlab import io as rio
from rnnlab.cli import main
from rnnlab.config import RunConfig
from rnnlab.errors import DiskError, RnnlabError, disk_error
from rnnlab.layout import manifest
from rnnlab.runs import folder
from rnnlab.study import Context, Step, run_study, study_settings
from rnnlab.training import checkpoint

TINY = ["--embed-dim", "8", "--hidden-dim", "8", "--max-len", "20", "--threads", "1"]
TINY += ["--no-progress", "--patience", "none"]


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnlab: error: "), err
    assert "Traceback" not in err
    return err


def refuse(code: int, what: str = "") -> Any:
    def raising(*args: Any, **kwargs: Any) -> Any:
        message = {errno.ENOSPC: "No space left on device"}.get(code, "refused")
        raise OSError(code, message, what) if what else OSError(code, message)

    return raising


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


# ----- the message -------------------------------------------------------------------------------
def test_disk_errors_become_one_line_naming_the_path_and_the_fix() -> None:
    full = disk_error(OSError(errno.ENOSPC, "No space left on device", "runs/r/model.pt"))
    assert str(full) == (
        "cannot write runs/r/model.pt: no space left on the device; free some space (or choose "
        "another --out) and run the command again"
    )
    hinted = disk_error(OSError(errno.ENOSPC, "x", "f"), "continue with `rnnlab train --resume r`")
    assert str(hinted).endswith(
        "no space left on the device; free some space; continue with `rnnlab train --resume r`"
    )
    assert "read-only; choose another -o" in str(
        disk_error(OSError(errno.EROFS, "x", "p"), flag="-o")
    )
    assert "cannot use p: permission denied" in str(
        disk_error(PermissionError(errno.EACCES, "x", "p"))
    )
    assert disk_error(OSError(errno.ENOENT, "x", "p")) is None
    assert disk_error(ValueError("x")) is None


def test_a_failed_atomic_write_names_the_target_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    monkeypatch.setattr(Path, "write_text", refuse(errno.ENOSPC))  # filename None, as f.write's
    with pytest.raises(OSError) as raised:
        rio.write_text_atomic(target, "new")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    monkeypatch.undo()
    assert target.read_text() == "old" and temps(tmp_path) == []


@pytest.mark.parametrize(
    ("code", "said"), [(errno.EROFS, "read-only"), (errno.EACCES, "permission")]
)
def test_a_folder_that_cannot_be_written_is_refused_up_front(
    code: int, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rio.check_writable(tmp_path / "new" / "deeper")  # fine: nothing is left behind
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(rio.tempfile, "mkstemp", refuse(code))
    with pytest.raises(DiskError, match=rf"cannot (write|use) {tmp_path}/out: .*{said}.*--out"):
        rio.check_writable(tmp_path / "out")
    (tmp_path / "file").write_text("x")
    monkeypatch.undo()
    with pytest.raises(RnnlabError, match="is a file; choose another --out"):
        rio.check_writable(tmp_path / "file" / "out")


# ----- before any computing ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--dataset", "{corpus}", *TINY, "--out", "{out}"],
        ["compare", "--dataset", "{corpus}", "--models", "rnn", *TINY, "--out", "{out}"],
        ["diagnose", "gradient-flow", "--models", "rnn", "--out", "{out}/d"],
        ["synthetic", "parity", "--out", "{out}/s"],
        ["study", "--quick", "--out", "{out}/study"],
        ["report", "{out}", "-o", "{out}/report.html"],
    ],
    ids=["train", "compare", "diagnose", "synthetic", "study", "report"],
)
def test_a_read_only_out_is_refused_before_anything_runs(
    argv: list[str],
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(rio.tempfile, "mkstemp", refuse(errno.EROFS))
    for name in (
        "rnnlab.runs.job.load_splits",
        "rnnlab.runs.comparison.load_splits",
        "rnnlab.study.runner.load_splits",
    ):
        monkeypatch.setattr(name, refuse(errno.EIO))  # nothing may load data
    monkeypatch.setattr("rnnlab.diagnostics.suite.run_one", refuse(errno.EIO))
    argv = [a.format(corpus=corpus, out=tmp_path) for a in argv]
    assert main(argv) == 2
    assert "the file system is read-only; choose another -" in one_line(capsys)
    assert list(tmp_path.iterdir()) == [corpus]


def test_resume_of_a_run_on_a_read_only_disk_is_refused_before_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "r"
    run.mkdir()
    RunConfig().save_yaml(run / "config.yaml")
    monkeypatch.setattr(rio.tempfile, "mkstemp", refuse(errno.EROFS))
    assert main(["train", "--resume", str(run)]) == 2
    assert f"cannot write {run}: the file system is read-only; copy the run folder" in one_line(
        capsys
    )
    monkeypatch.undo()
    monkeypatch.setattr(folder, "open", refuse(errno.EROFS, str(run / ".lock")), raising=False)
    locked = folder.lock_run(run)
    with pytest.raises(DiskError, match=r"\.lock: the file system is read-only; copy the run"):
        locked.__enter__()


# ----- during the work ---------------------------------------------------------------------------
def test_a_full_disk_during_training_is_one_line_and_the_run_resumes(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "r"
    argv = ["train", "--dataset", str(corpus), *TINY, "--epochs", "2", "--out", str(tmp_path)]
    writes = manifest._write_staged
    calls: list[Path] = []

    def fills_up(path: Path, data: bytes) -> None:
        calls.extend([path] if ".checkpoint.pt." in path.name else [])
        if ".checkpoint.pt." in path.name and len(calls) > 1:  # epoch 1's fits, epoch 2's not
            raise OSError(errno.ENOSPC, "No space left on device")
        writes(path, data)

    monkeypatch.setattr(manifest, "_write_staged", fills_up)
    assert main([*argv, "--name", "r"]) == 2
    err = one_line(capsys)
    assert f"cannot write {run / 'checkpoint.pt'}: no space left on the device" in err
    assert f"continue with `rnnlab train --resume {run}`" in err
    assert checkpoint.Checkpoint.load(run / "checkpoint.pt").epoch == 1  # epoch 1 is kept
    assert temps(tmp_path) == []
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "no space left" in summary["error"]
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2


def test_a_disk_too_full_for_the_failure_note_keeps_the_first_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folder, "write_files", refuse(errno.ENOSPC, "summary.json"))
    assert folder.mark_failed(tmp_path, "r", "the first error") is False


def test_a_full_disk_stops_the_study_in_one_line_with_no_traceback(tmp_path: Path) -> None:
    log: list[str] = []

    def step(name: str) -> Step:
        def run(ctx: Context) -> None:
            log.append(name)
            if name != "a":  # as a training step says it: with the run's resume command
                full = OSError(errno.ENOSPC, "No space left on device", str(ctx.out / name))
                raise disk_error(full, "continue with `rnnlab train --resume run`") or full
            (ctx.out / name).mkdir()
            (ctx.out / name / "result.json").write_text("{}")

        return Step(name, name, f"{name}/result.json", run, folder=name)

    shown = io.StringIO()
    out = tmp_path / "s"
    said = r"no space left on the device; free some space; then run the same command: the study"
    with pytest.raises(DiskError, match=said) as raised:
        run_study(
            study_settings("imdb", quick=True), out, steps=[step(n) for n in "abc"],
            console=Console(file=shown, width=200),
        )  # fmt: skip
    assert log == ["a", "b"]  # c would fail alike: the study stopped at b
    assert "rnnlab train --resume" not in str(raised.value)  # rerunning the study resumes it
    assert "Traceback" not in shown.getvalue()
    states = {
        k: v["state"] for k, v in json.loads((out / "study.json").read_text())["steps"].items()
    }
    assert states == {"a": "done", "b": "failed"} and (out / "a" / "result.json").is_file()


def test_a_full_cache_folder_names_rnnlab_cache_dir(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnlab.config import DataConfig
    from rnnlab.data import encoded_cache, pipeline

    monkeypatch.setattr(encoded_cache.np, "savez", refuse(errno.ENOSPC, "splits.npz"))
    with pytest.raises(
        DiskError, match="no space left on the device; free some space, or set RNNLAB_CACHE_DIR"
    ):
        pipeline.load_splits(DataConfig(dataset=str(corpus), seed=7))
    assert temps(pipeline.cache_dir()) == [] and not list(pipeline.cache_dir().rglob(".tmp-*"))
