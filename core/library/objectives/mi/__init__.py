"""Parts of VAE-MINE's MI term, each chosen by a named setting of core/library/objectives/mine.py: the energy,
the estimators, the negative pairs; and the instrument that measures the bound beside the objective."""
