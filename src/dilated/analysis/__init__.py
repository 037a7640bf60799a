"""How models act on the time axis, read once and used by the summary, the diagrams and streaming alike.

:func:`receptive_field` traces one forward pass and keeps, for every tensor, the exact input steps each of its steps
reads (a :class:`Graph` of :class:`Node` objects whose fields are :class:`Field` sets of :class:`Steps`);
:func:`probe_receptive_field` measures the same by perturbation; :func:`geometry_of` gives one module's time-axis
geometry. Models of other frameworks are read by a registered :class:`ModelReader` (Keras:
:mod:`dilated.keras_bridge`), built from the same graph types.

Its modules, lowest first: ``_fields`` (exact sets of input steps, pure Python), ``_graph`` (the dataflow graph),
``_modules`` (one module -> geometry), ``_values`` (what the tracer knows of a tensor), ``_op_names`` (the ops it
follows), ``_tracer_base`` (its state, element-code moves), the op rules by family (``_ops_pointwise``,
``_ops_moves``, ``_ops_contractions``, ``_ops_attention`` with ``_attention``'s masks), ``_tracer`` (:func:`trace`),
``_readers``, ``_probe``, ``_receptive``.
"""

from dilated.analysis._attention import attention_rows, read_keys
from dilated.analysis._fields import IDENTITY, Field, Steps
from dilated.analysis._graph import Graph, Node, TensorTable, Unfollowed, tensors_in
from dilated.analysis._modules import GLOBAL_MODULES, geometry_of
from dilated.analysis._probe import Probe, probe_receptive_field
from dilated.analysis._readers import ModelReader, register_reader
from dilated.analysis._receptive import LayerField, ReceptiveField, first_noncausal_layer, receptive_field
from dilated.analysis._tracer import trace

__all__ = [
    "GLOBAL_MODULES",
    "IDENTITY",
    "Field",
    "Graph",
    "LayerField",
    "ModelReader",
    "Node",
    "Probe",
    "ReceptiveField",
    "Steps",
    "TensorTable",
    "Unfollowed",
    "attention_rows",
    "first_noncausal_layer",
    "geometry_of",
    "probe_receptive_field",
    "read_keys",
    "receptive_field",
    "register_reader",
    "tensors_in",
    "trace",
]
