"""How models act on the time axis, read once and used by the summary, the diagrams and streaming alike.

* :mod:`~dilated.analysis.modules`: one module's time-axis geometry (``geometry_of``);
* :mod:`~dilated.analysis.fields`: exact sets of input steps (pure Python);
* :mod:`~dilated.analysis.graph` / :mod:`~dilated.analysis.keras_graph`: the dataflow of a torch / Keras model;
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
