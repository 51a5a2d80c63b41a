"""Where rnnlab keeps caches and runs, so nothing lands in the user's home by surprise."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder: $RNNLAB_CACHE_DIR, else ./.cache/rnnlab."""
    return Path(os.environ.get("RNNLAB_CACHE_DIR", Path.cwd() / ".cache" / "rnnlab"))


def configure_cache_env() -> None:
    """Point matplotlib and Hugging Face caches into the cache folder unless the user set them."""
    root = cache_dir().parent
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    os.environ.setdefault("HF_HOME", str(root / "huggingface"))
