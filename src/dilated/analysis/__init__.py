"""Analysis of how models act on the time axis (read once, used by summary, draw and streaming alike)."""

from dilated.analysis.modules import GLOBAL_MODULES, geometry_of

__all__ = ["GLOBAL_MODULES", "geometry_of"]
