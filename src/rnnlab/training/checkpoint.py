"""Model weights on disk: atomic save, safe load (`weights_only=True`), in-memory snapshots."""

from __future__ import annotations

from pathlib import Path

import torch

from rnnlab.errors import RnnlabError
from rnnlab.io import write_with

StateDict = dict[str, torch.Tensor]


def snapshot(model: torch.nn.Module) -> StateDict:
    """A detached CPU copy of the weights (for restoring the best epoch later)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_state_dict(path: Path | str, state: StateDict | torch.nn.Module) -> None:
    """Write a state_dict (or a module's) atomically, moved to the CPU."""
    if isinstance(state, torch.nn.Module):
        state = snapshot(state)
    else:
        state = {k: v.detach().cpu() for k, v in state.items()}
    write_with(path, lambda tmp: torch.save(state, tmp))


def load_state_dict(path: Path | str) -> StateDict:
    """Read a state_dict with `weights_only=True` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"{path} is missing; the run did not finish saving, train it again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, pickle error, foreign format
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise RnnlabError(
            f"cannot read weights from {path} ({reason}); train the run again"
        ) from None
    if not isinstance(state, dict):
        raise RnnlabError(f"{path} does not hold a state_dict; train the run again")
    return state
