"""VAE-MINE and its baselines: corpora, LSTM VAE, objectives, training, metrics, checkpoints.

Public API: `core.load(path)` returns a `TextVAEModel` with encode / decode / reconstruct /
sample_prior / interpolate / analogy / posterior_samples / kl / encode_split; `core.describe(path)`
says what a bundle is without loading it; `core.read_sentences` reads a corpus split and
`core.available_corpora` lists the data folder's; `core.MAP_SPLIT` / `core.MAP_N` name the latent map
each bundle's atlas ships, and `core.maps` lays out, aligns, compares and extends maps;
`core.active_units` and `core.diversity` are the AU and diversity figures everything reports, and
`core.catalogue` names every evaluation figure and the tables that show it;
`core.lab.live_training` trains small models side by side for the classroom. Errors a user can
act on are `core.errors.VaeMineError`s; `core.LIMITS` is the one table of allowed ranges
(`core.check(name, value)`), which the explorer's controls share.
"""

from . import catalogue
from .api import (
    DECODING,
    EXAMPLE,
    LIMITS,
    MODES,
    STRATEGIES,
    BundleInfo,
    Decoding,
    Limit,
    Prepared,
    TextVAEModel,
    active_units,
    check,
    decoding_options,
    departure_text,
    describe,
    is_bundle,
    load,
    path_plane,
    read_sentences,
)
from .atlas import MAP_N, MAP_SPLIT, aligned_kind
from .atlas import digest as split_digest
from .corpora import available as available_corpora
from .corpora import data_dir
from .errors import CheckpointError, CorpusError, InputError, VaeMineError
from .maps import (
    OVERLAP_K,
    OWN_MAX_BYTES,
    OWN_MAX_LINES,
    OWN_MIN_ALONE,
    CosineIndex,
    Overlap,
    Placement,
    aligned_2d,
    chance_overlap,
    containing,
    neighbour_overlap,
    own_sentences,
    umap_2d,
)
from .metrics import AU_THRESHOLD, CodeState, code_state, diversity, word_f1

__all__ = [
    "EXAMPLE",
    "CodeState",
    "code_state",
    "catalogue",
    "load",
    "describe",
    "path_plane",
    "read_sentences",
    "data_dir",
    "active_units",
    "diversity",
    "word_f1",
    "AU_THRESHOLD",
    "STRATEGIES",
    "MODES",
    "LIMITS",
    "Limit",
    "check",
    "decoding_options",
    "Prepared",
    "BundleInfo",
    "TextVAEModel",
    "VaeMineError",
    "CheckpointError",
    "CorpusError",
    "InputError",
    "split_digest",
    "umap_2d",
    "MAP_N",
    "MAP_SPLIT",
    "available_corpora",
    "is_bundle",
    "DECODING",
    "Decoding",
    "departure_text",
    "aligned_kind",
    "aligned_2d",
    "Placement",
    "Overlap",
    "neighbour_overlap",
    "chance_overlap",
    "containing",
    "own_sentences",
    "OVERLAP_K",
    "CosineIndex",
    "OWN_MAX_BYTES",
    "OWN_MAX_LINES",
    "OWN_MIN_ALONE",
]
