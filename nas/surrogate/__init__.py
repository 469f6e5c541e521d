"""Model-based proposals: a tree-ensemble surrogate of accuracy over architecture encodings, a fast random
candidate pool, and the hypervolume acquisition that picks what to train next (see ``propose.py``)."""

from nas.surrogate.acquire import hv_gains, layer_front
from nas.surrogate.encode import Encoder
from nas.surrogate.model import ForestSurrogate
from nas.surrogate.pool import RandomPool

__all__ = ["Encoder", "ForestSurrogate", "RandomPool", "hv_gains", "layer_front"]
