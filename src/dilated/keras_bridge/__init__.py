"""Everything Keras 3: loading models, their layers' time-axis geometry, the walk of their graph for receptive
fields, and conversion to a ``dilated`` layer graph (torch).

Keras is optional (``pip install "dilated[keras]"``) and imported only when a Keras model is used, with the torch
backend unless ``KERAS_BACKEND`` says otherwise. Keras tensors are ``(batch, time, channels)``; ``dilated``'s are
``(batch, channels, time)`` (:func:`dilated.layers.channels_first` names the conversion). Importing this package
registers its reader with :mod:`dilated.analysis`, so ``dilated.receptive_field`` reads Keras models.

Its modules, lowest first: :mod:`._adapter` (import, load, layer geometry), :mod:`._walk` (the graph walk),
:mod:`._convert` (:func:`from_keras`).
"""

from dilated.analysis import ModelReader, register_reader
from dilated.keras_bridge._adapter import import_keras, is_keras_model, keras_geometry, load_keras_model
from dilated.keras_bridge._convert import check_conversion, convert_file, from_keras, load_converted, save_converted
from dilated.keras_bridge._walk import keras_graph, keras_input_shape, keras_probe_function

__all__ = [
    "check_conversion",
    "convert_file",
    "from_keras",
    "import_keras",
    "is_keras_model",
    "keras_geometry",
    "keras_graph",
    "keras_input_shape",
    "keras_probe_function",
    "load_converted",
    "load_keras_model",
    "save_converted",
]

register_reader(ModelReader("keras", is_keras_model, keras_graph, keras_probe_function))
