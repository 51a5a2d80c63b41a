"""Weights and training state on disk: atomic, byte-identical saves, safe loads
(`weights_only=True`), in-memory snapshots, and the per-epoch checkpoint a run resumes from
(written through the run folder's manifest, `rnnlab.layout.manifest`)."""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.errors import RnnlabError
from rnnlab.io import write_with
from rnnlab.layout.manifest import write_file

StateDict = dict[str, torch.Tensor]


def snapshot(model: torch.nn.Module) -> StateDict:
    """A detached CPU copy of the weights (for restoring the best epoch later)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def torch_bytes(obj: Any) -> bytes:
    """What torch.save writes for obj. Serialised in memory: saving to a path stores the file's
    (temporary) name inside the archive, so identical objects would give different bytes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_torch(path: Path | str, obj: Any) -> None:
    """torch.save atomically, byte-identical for identical objects."""
    data = torch_bytes(obj)
    write_with(path, lambda tmp: _write_bytes(tmp, data))


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def load_torch(
    path: Path | str,
    what: str,
    *,
    mmap: bool = False,
    fix: str = "train the run again",
    checked: bool = False,
) -> Any:
    """torch.load(weights_only=True) onto the CPU (memory-mapped: tensors are read when used);
    a damaged or foreign file is a user error, and so is one whose bytes fail the checksums
    torch.save wrote into the archive (a flipped bit would otherwise load as other weights).
    `checked`: the caller matched the file's sha256 against the run's manifest, which sees
    everything the CRC-32 pass would, so that pass is skipped."""
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"{path} is missing; the run did not finish saving, train it again")
    damaged = None if checked else _failed_checksum(path)
    if damaged is not None:
        raise RnnlabError(
            f"{path} is damaged: {damaged} does not match its checksum (changed on disk or in "
            f"a copy); {fix}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # truncated file, pickle error, foreign format
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise RnnlabError(f"cannot read {what} from {path} ({reason}); {fix}") from None


def _failed_checksum(path: Path) -> str | None:
    """The first member of a torch.save archive whose CRC-32 does not match its bytes (None
    when all match, or when the file is not a zip archive: torch.load then says why)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    except zipfile.error:  # a member header that does not parse
        return path.name


def save_state_dict(path: Path | str, state: StateDict | torch.nn.Module) -> None:
    """Write a state_dict (or a module's) atomically, moved to the CPU."""
    if isinstance(state, torch.nn.Module):
        state = snapshot(state)
    else:
        state = {k: v.detach().cpu() for k, v in state.items()}
    save_torch(path, state)


def load_state_dict(path: Path | str, *, mmap: bool = False, checked: bool = False) -> StateDict:
    """Read a state_dict with `weights_only=True` onto the CPU (`checked`: see load_torch)."""
    state = load_torch(path, "weights", mmap=mmap, checked=checked)
    if not isinstance(state, dict):
        raise RnnlabError(f"{path} does not hold a state_dict; train the run again")
    return state


# ----- resuming ----------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every random generator training draws from (Python, numpy, torch CPU and CUDA)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys).copy()), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Checkpoint:
    """Everything needed to continue training after `epoch` exactly as if it never stopped."""

    epoch: int
    """The last finished epoch."""
    step: int
    """Optimizer steps taken so far."""
    model: StateDict
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    best_weights: StateDict | None
    best_epoch: int | None
    best_value: float | None
    bad_epochs: int
    """Epochs without improvement (early stopping)."""
    history: list[dict[str, Any]]
    rng: dict[str, Any]

    def save(self, path: Path | str) -> None:
        """As a run folder's checkpoint.pt: through its manifest (a kill leaves the old file or
        the new one, each accepted by the manifest)."""
        write_file(path, torch_bytes(asdict(self)))

    @classmethod
    def load(cls, path: Path | str) -> Checkpoint:
        raw = load_torch(
            path, "the training checkpoint",
            fix="resume from a copy of the run, or start over with --overwrite",
        )  # fmt: skip
        try:
            return cls(**raw)
        except TypeError:
            raise RnnlabError(
                f"{path} is not an rnnlab training checkpoint; train the run again with --overwrite"
            ) from None
