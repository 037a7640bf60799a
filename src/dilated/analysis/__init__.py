"""How models act on the time axis, read once and used by the summary, the diagrams and streaming alike.

* :mod:`~dilated.analysis.modules`: one module's time-axis geometry (``geometry_of``);
* :mod:`~dilated.analysis.fields`: exact sets of input steps (pure Python);
* :mod:`~dilated.analysis.graph`: the dataflow graph of a model (:class:`Graph`, :class:`Node`);
* :mod:`~dilated.analysis.tracer`: :func:`trace`, the graph of a torch model from one forward pass, built on (lowest
  first) :mod:`~dilated.analysis.values` (what it knows of a tensor), :mod:`~dilated.analysis.op_names` (the ops
  it follows), :mod:`~dilated.analysis.tracer_base` (its state, element-code moves) and the op rules by family:
  :mod:`~dilated.analysis.ops_pointwise`, :mod:`~dilated.analysis.ops_moves`,
  :mod:`~dilated.analysis.ops_contractions`, :mod:`~dilated.analysis.ops_attention`
  (masks in :mod:`~dilated.analysis.attention`, shared with the Keras reader);
* :mod:`~dilated.analysis.keras_graph`: the graph of a Keras model;
* :mod:`~dilated.analysis.receptive`: :func:`receptive_field` and :func:`first_noncausal_layer`;
* :mod:`~dilated.analysis.probe`: the empirical check, :func:`probe_receptive_field`.
"""

from dilated.analysis.graph import Graph, Node, Unfollowed
from dilated.analysis.modules import GLOBAL_MODULES, geometry_of
from dilated.analysis.probe import Probe, probe_receptive_field
from dilated.analysis.receptive import LayerField, ReceptiveField, first_noncausal_layer, receptive_field
from dilated.analysis.tracer import trace

__all__ = [
    "GLOBAL_MODULES",
    "Graph",
    "LayerField",
    "Node",
    "Probe",
    "ReceptiveField",
    "Unfollowed",
    "first_noncausal_layer",
    "geometry_of",
    "probe_receptive_field",
    "receptive_field",
    "trace",
]
