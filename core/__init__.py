"""VAE-MINE and its baselines: corpora, LSTM VAE, objectives, training, metrics, checkpoints.

Public API: `core.load(path)` returns a `TextVAEModel` with encode / decode / reconstruct /
sample_prior / interpolate. Errors a user can act on are `core.errors.VaeMineError`s.
"""
from .api import TextVAEModel, load
from .errors import CheckpointError, CorpusError, InputError, VaeMineError

__all__ = ["load", "TextVAEModel", "VaeMineError", "CheckpointError", "CorpusError", "InputError"]
