"""The search report (``nas report RUN_ID [-o DIR]``): a self-contained HTML page with PNG plots.

Sections: the Pareto front (accuracy against each cost objective, with classical baselines), hypervolume against
compute, the bill by part, the break-even table and the scaling fits with their extrapolation. The caller fills
a plain :class:`ReportData` (nothing here reads MLflow) and calls :func:`render_report`.
"""

from nas.report.data import ReportData, curve_points, hypervolume_history, pareto_flags, scaling_entries
from nas.report.html import SECTIONS, render_report

__all__ = ["SECTIONS", "ReportData", "curve_points", "hypervolume_history", "pareto_flags", "render_report",
           "scaling_entries"]
