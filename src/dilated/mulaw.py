"""Old import path of :mod:`dilated.models.mulaw`, kept for code that wrote ``from dilated.mulaw import ...``."""

from dilated.models.mulaw import mu_law_compress, mu_law_decode, mu_law_encode, mu_law_expand, one_hot

__all__ = ["mu_law_compress", "mu_law_decode", "mu_law_encode", "mu_law_expand", "one_hot"]
