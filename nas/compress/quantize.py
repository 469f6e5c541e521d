"""``int8``: post-training int8 quantization with what torch ships (``torch.ao.quantization``), on the CPU.

* **dynamic** (``quantize_dynamic``): Linear, LSTM and GRU weights stored as int8, activations quantized on the
  fly per batch; everything else (convolutions, norms) stays float. No calibration needed.
* **static** (FX graph mode ``prepare_fx``/``convert_fx`` with the default qconfig mapping of the current
  quantized engine, ``x86`` on this CPU): weights (per channel) and activations int8, BatchNorm folded into the
  preceding convolutions, activation ranges observed on a calibration batch. Works for the ``cnn`` builder's
  plain and MBConv blocks (squeeze-excitation and residual adds included). If preparing, calibrating, converting
  or running the converted model fails for an architecture, the method falls back to dynamic quantization of
  the Linear layers and says so in the notes.

``torch.ao.quantization`` is deprecated in favor of torchao (not installed here); its deprecation warnings are
silenced inside this module (and by :func:`quiet_quantization` for callers that run quantized models). Quantized
kernels run on the CPU only, so the compressed model is on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from nas.compress.registry import CompressedModel, register_method
from nas.profile import count_flops

log = logging.getLogger(__name__)

MODES = ("auto", "dynamic", "static")
#: Module types ``quantize_dynamic`` converts.
DYNAMIC_TYPES: frozenset[type[nn.Module]] = frozenset({nn.Linear, nn.LSTM, nn.GRU})
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

_QUIET = (
    "torch.ao.quantization is deprecated",
    ".*quantized tensor creation functions",
    "Please use quant_min and quant_max",
    ".*torch.jit.script. is deprecated",
)


@contextlib.contextmanager
def quiet_quantization() -> Iterator[None]:
    """Silence torch's deprecation warnings about ``torch.ao.quantization`` and quantized tensors."""
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        yield


@register_method("int8")
def int8(
    model: nn.Module, *, mode: str = "auto", calibration: Tensor | None = None, batch_size: int = 256
) -> CompressedModel:
    """Quantize to int8: ``mode="dynamic"``, ``"static"`` (needs ``calibration``, a batch ``(n, *input_shape)``)
    or ``"auto"`` (static when the model has convolutions and a calibration batch is given, else dynamic).

    ``compute_mflops`` of the result is the calibration cost: forward MFLOPs per sample x calibration samples.
    """
    if mode not in MODES:
        raise ValueError(f"int8: mode must be one of {MODES}, got {mode!r}")
    if mode == "static" and calibration is None:
        raise ValueError("int8: mode='static' needs calibration=, a batch of inputs (n, *input_shape)")
    if calibration is not None and (not isinstance(calibration, Tensor) or calibration.dim() < 2
                                    or len(calibration) < 1 or not calibration.is_floating_point()):
        raise ValueError("int8: calibration must be a float tensor (n, *input_shape) with n >= 1")
    model = model.cpu().eval()
    reference = copy.deepcopy(model)
    has_conv = any(isinstance(m, _CONVS) for m in model.modules())
    notes: list[str] = []
    settings: dict[str, object] = {"engine": torch.backends.quantized.engine}
    compute = 0.0
    if mode == "auto":
        mode = "static" if has_conv and calibration is not None else "dynamic"
        if has_conv and calibration is None:
            notes.append("no calibration batch given: convolutions stay float, only Linear/LSTM/GRU are int8")
    if mode == "dynamic" and calibration is not None:
        notes.append("calibration batch unused: dynamic quantization observes activations at run time")
    quantized: nn.Module | None = None
    if mode == "static":
        assert calibration is not None
        calibration = calibration.detach().cpu()
        settings["calibration_samples"] = len(calibration)
        progress = {"calibrated": False}
        try:
            quantized = _static(model, calibration, batch_size, progress)
        except Exception as err:  # noqa: BLE001  (any failure of FX tracing or conversion means: fall back)
            log.warning("int8: static quantization failed for %s (%s); using dynamic", type(model).__name__, err)
            notes.append(
                f"static int8 failed for this architecture ({type(err).__name__}: {err}); fell back to dynamic "
                "int8 of the Linear/LSTM/GRU layers, convolutions stay float"
            )
            mode = "dynamic (static failed)"
            model = copy.deepcopy(reference)
        else:
            notes.append(
                f"static int8 ({settings['engine']} engine, FX graph mode): conv/linear weights per-channel int8, "
                f"activations int8 with ranges calibrated on {len(calibration)} samples; BatchNorm folded into convs"
            )
        if progress["calibrated"]:  # the calibration passes ran (even if converting failed): bill them
            per_sample, _, _ = count_flops(reference, tuple(calibration.shape[1:]))
            compute = per_sample * len(calibration) / 1e6
    if quantized is None:
        with quiet_quantization():
            quantized = torch.ao.quantization.quantize_dynamic(model, set(DYNAMIC_TYPES), dtype=torch.qint8)
        converted = [type(m).__name__ for m in model.modules() if type(m) in DYNAMIC_TYPES]
        if not converted:
            notes.append("dynamic int8 found no Linear/LSTM/GRU layer: nothing was quantized")
        notes.append(
            "dynamic int8: Linear/LSTM/GRU weights int8 (per tensor), activations quantized on the fly per batch; "
            "other layers stay float"
        )
        settings["dynamic_layers"] = len(converted)
    settings["mode"] = mode
    notes.append("quantized kernels run on the CPU only; the model is not fine-tuned after quantization")
    return CompressedModel(
        model=quantized, method="int8", settings=settings, notes=notes, flops_reference=reference,
        compute_mflops=compute,
    )


def _static(model: nn.Module, calibration: Tensor, batch_size: int, progress: dict[str, bool]) -> nn.Module:
    """FX graph mode static PTQ of ``model`` (eval mode), calibrated on ``calibration``; checked by a forward.
    Sets ``progress["calibrated"]`` once the calibration passes have run."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = torch.backends.quantized.engine
    with quiet_quantization(), torch.no_grad():
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example_inputs=(calibration[:1],))
        for start in range(0, len(calibration), batch_size):
            prepared(calibration[start:start + batch_size])
        progress["calibrated"] = True
        quantized = convert_fx(prepared)
        out = quantized(calibration[:2])
    if not torch.isfinite(out).all():
        raise RuntimeError("the converted model gives non-finite outputs")
    return quantized
