"""LSTM-LM: the decoder alone, no latent variable; its loss is the exact NLL."""

from .base import Objective


class LSTMLM(Objective):
    name = "lstm-lm"
    display_name = "LSTM-LM"
    source = "the decoder of the paper's VAEs without z"
    latent = False
    table2_row = 1

    def loss(self, model, batch):
        rec = model.reconstruction(batch, None)
        loss = rec.mean()
        return loss, self.stats(loss, rec)
