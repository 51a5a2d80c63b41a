"""The data side: sources, text encoding, cached encoded splits and length-bucketed batches."""

from rnnlab.data.batching import Batch, BucketBatchSampler, collate, iterate_batches, padding_share
from rnnlab.data.encoded import EncodedSplit, EncodedSplits
from rnnlab.data.pipeline import cache_key, load_splits, resolve_tokenizer
from rnnlab.data.sources import DATASETS, load_raw
from rnnlab.data.text import Normalizer
from rnnlab.data.text_encoder import TextEncoder
from rnnlab.data.vocab import Vocab

__all__ = [
    "DATASETS",
    "Batch",
    "BucketBatchSampler",
    "EncodedSplit",
    "EncodedSplits",
    "Normalizer",
    "TextEncoder",
    "Vocab",
    "cache_key",
    "collate",
    "iterate_batches",
    "load_raw",
    "load_splits",
    "padding_share",
    "resolve_tokenizer",
]
