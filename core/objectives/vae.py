"""The plain VAE: maximise the ELBO, KL weight 1."""
from .base import Objective


class VAE(Objective):
    name = "vae"
