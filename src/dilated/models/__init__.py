"""The models: WaveNet, TCN, TransLOB, DeepLOB, MLPLOB, TLOB and designed dilated stacks, with shared blocks, registered by name.

    >>> from dilated.models import available_models, build_model, example_input_shape
    >>> available_models()
    ['deeplob', 'dilated_stack', 'mlplob', 'tcn', 'tlob', 'translob', 'wavenet']
    >>> model = build_model("tcn", num_channels=(32, 32, 32), kernel_size=3)

The registry lives in :mod:`dilated.models._registry`; importing this package imports every model module, which
registers it.
"""

from dilated.models._deeplob import DeepLOB, DeepLOBConfig
from dilated.models._mlplob import MLPLOB, MLPLOBConfig
from dilated.models._mulaw import mu_law_compress, mu_law_decode, mu_law_encode, mu_law_expand, one_hot
from dilated.models._registry import (
    DataFit,
    DataShape,
    available_models,
    build_model,
    covering_input_shape,
    example_input_shape,
    fitted_options,
    model_config,
    model_options,
    register_model,
)
from dilated.models._stack import DilatedStack, DilatedStackConfig
from dilated.models._tcn import TCN, TCNConfig
from dilated.models._tlob import TLOB, TLOBConfig
from dilated.models._translob import TransLOB, TransLOBConfig
from dilated.models._wavenet import WaveNet, WaveNetConfig

__all__ = [
    "TCN",
    "DataFit",
    "DataShape",
    "DeepLOB",
    "DeepLOBConfig",
    "DilatedStack",
    "DilatedStackConfig",
    "MLPLOB",
    "MLPLOBConfig",
    "TCNConfig",
    "TLOB",
    "TLOBConfig",
    "TransLOB",
    "TransLOBConfig",
    "WaveNet",
    "WaveNetConfig",
    "available_models",
    "build_model",
    "covering_input_shape",
    "example_input_shape",
    "fitted_options",
    "model_config",
    "model_options",
    "mu_law_compress",
    "mu_law_decode",
    "mu_law_encode",
    "mu_law_expand",
    "one_hot",
    "register_model",
]
