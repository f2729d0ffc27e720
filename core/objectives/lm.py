"""LSTM-LM: the decoder alone, no latent variable; its loss is the exact NLL."""
from .base import Objective


class LSTMLM(Objective):
    name = "lstm-lm"
    latent = False

    def loss(self, model, batch):
        rec = model.reconstruction(batch, None)
        loss = rec.mean()
        return loss, self.stats(loss, rec)
