"""``nas export``: one Pareto model written as a file that deploys.

Formats (a table, :data:`FORMATS`): ``pt`` (weights + architecture + space, for ``nas.load_model(path)``),
``torchscript`` (``torch.jit.load``, no nas needed) and ``onnx`` (onnxruntime, no torch needed). The exported
model takes raw inputs (the data's preprocessing is inside, as in the logged MLflow model), except ``pt``, which
rebuilds the model as trained (``model.nas_arch["preprocessing"]`` says how raw inputs map to it). Each export is
loaded back in its own runtime, its outputs compared with the PyTorch model's, and its latency measured there.
"""

from nas.export.formats import FORMATS, ExportResult, export_model, load_pt

__all__ = ["FORMATS", "ExportResult", "export_model", "load_pt"]
