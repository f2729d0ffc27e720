"""VAE-MINE and its baselines: corpora, LSTM VAE, objectives, training, metrics, checkpoints.

Public API: `core.load(path)` returns a `TextVAEModel` with encode / decode / reconstruct /
sample_prior / interpolate / analogy / posterior_samples / kl / encode_split; `core.describe(path)`
says what a bundle is without loading it; `core.read_sentences` reads a corpus split and
`core.available_corpora` lists the data folder's; `core.WHOLE_SPLIT` names the split whose every
sentence the default latent map draws and `core.MAP_SPLIT` / `core.MAP_N` the compare view's, each
laid out in the bundle's atlas; and `core.serving.maps` lays out, aligns, compares and extends maps;
`core.active_units` and `core.diversity` are the AU and diversity figures everything reports, and
`core.catalogue` names every evaluation figure and the tables that show it;
`core.serving.lab.live_training` trains small models side by side for the classroom. Errors a user can
act on are `core.library.errors.VaeMineError`s; `core.LIMITS` is the one table of allowed ranges
(`core.check(name, value)`), which the explorer's controls share.
"""

from .library import catalogue
from .library.corpora import available as available_corpora
from .library.corpora import data_dir
from .library.errors import CheckpointError, CorpusError, InputError, VaeMineError
from .library.metrics import AU_THRESHOLD, CodeState, code_state, diversity, word_f1
from .serving.api import (
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
from .serving.atlas import MAP_N, MAP_SPLIT, WHOLE_SPLIT, aligned_kind
from .serving.atlas import digest as split_digest
from .serving.index import CosineIndex
from .serving.maps import (
    INVERSE_K,
    LAYOUT_FIT_MAX,
    OVERLAP_K,
    OWN_MAX_BYTES,
    OWN_MAX_LINES,
    OWN_MIN_ALONE,
    MapInverse,
    MapPoint,
    Overlap,
    Placement,
    aligned_2d,
    chance_overlap,
    containing,
    neighbour_overlap,
    own_sentences,
    umap_2d,
)

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
    "LAYOUT_FIT_MAX",
    "MapInverse",
    "INVERSE_K",
    "MapPoint",
    "MAP_N",
    "MAP_SPLIT",
    "WHOLE_SPLIT",
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
