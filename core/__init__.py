"""VAE-MINE and its baselines: corpora, LSTM VAE, objectives, training, metrics, checkpoints.

Public API: `core.load(path)` returns a `TextVAEModel` with encode / decode / reconstruct /
sample_prior / interpolate / encode_split; `core.read_sentences` reads a corpus split;
`core.lab.live_training` trains small models side by side for the classroom. Errors a user can act on are `core.errors.VaeMineError`s.
"""
from .api import TextVAEModel, load, read_sentences
from .errors import CheckpointError, CorpusError, InputError, VaeMineError
from .metrics import AU_THRESHOLD

__all__ = ["load", "read_sentences", "AU_THRESHOLD", "TextVAEModel", "VaeMineError", "CheckpointError", "CorpusError", "InputError"]
