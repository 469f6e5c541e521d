"""nas: efficiency-aware neural architecture search.

Searches architectures for the best accuracy at the least compute, and reports what the search itself cost.
"""

from __future__ import annotations

__version__ = "0.1.0"
