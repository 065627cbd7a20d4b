"""ONNX export of a saved model, checked against torch with onnxruntime.

Glossary:
    exportable: an adapter whose model has ``onnx_spec() -> (module, example_input, input_names, output_names,
        dynamic_axes)``: a torch module and a representative input. ``torchvision-classifier`` exports the whole
        network with its normalisation and softmax: input ``images`` (N, 3, S, S) float32 pixels 0..255 (RGB, each
        image resized to S = ``image_size``), output ``probs`` (N, K). ``embed-logreg`` (an embedder and a
        scikit-learn classifier, no torch module) is not exportable: serve it from Python.
    exporter: ``torch.onnx.export(..., dynamo=False, opset_version=17)``, the TorchScript-based exporter, which
        needs no extra package (torch 2.14 still ships it; its deprecation warning is silenced here).
    check: onnxruntime (CPU) runs the example input and, when the batch axis is dynamic, a batch of another size;
        each output is compared with torch's: ``max_abs_diff`` must be <= ``atol + rtol * max|torch output|``.
        Detector outputs (several outputs sharing a dynamic row axis that is not a batch axis) are compared as
        sets of rows: both sides are put in one canonical row order first, since detections of equal score may
        come out in either order.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.errors import MissingDependencyError, ModelError

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True)
class OnnxReport:
    """What ``export_onnx`` wrote and how closely onnxruntime reproduces torch.

    Attributes:
        path: the ``.onnx`` file. adapter: the model's adapter. opset: the ONNX opset.
        input_names, output_names: graph names; input_shape: the example input's shape.
        batch_sizes: the batch sizes compared (empty when ``check`` was off).
        max_abs_diff: largest |onnxruntime - torch| over every output and batch (nan when not checked).
        tolerance: the bound it had to stay under. size_bytes: file size.
        real_rows: detectors: rows (detections) torch gave on the busiest image of the training data, also
            compared; None when no such image was at hand (then only a noise image, which may detect nothing).
    """

    path: Path
    adapter: str
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    batch_sizes: tuple[int, ...] = field(default_factory=tuple)
    max_abs_diff: float = float("nan")
    tolerance: float = float("nan")
    size_bytes: int = 0
    real_rows: int | None = None

    @property
    def checked(self) -> bool:
        return bool(self.batch_sizes)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "adapter": self.adapter, "opset": self.opset,
                "input_names": list(self.input_names), "output_names": list(self.output_names),
                "input_shape": list(self.input_shape), "batch_sizes": list(self.batch_sizes),
                "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance, "size_bytes": self.size_bytes,
                "real_rows": self.real_rows}


def _outputs(out: Any) -> list[np.ndarray]:
    items = out if isinstance(out, (tuple, list)) else [out]
    return [np.asarray(o.detach().cpu().numpy()) for o in items]


def export_onnx(model_folder: str | Path, dst: str | Path, *, check: bool = True, atol: float = 1e-4,
                rtol: float = 1e-3, opset: int = OPSET) -> OnnxReport:
    """Export the model saved in ``model_folder`` to the ONNX file ``dst`` (atomically) and check it.

    Args:
        model_folder: a maslow model folder (``model.json`` + weights).
        dst: the ``.onnx`` file to write.
        check: run onnxruntime on the example input (and another batch size) and compare with torch.
        atol, rtol: the check fails when ``max_abs_diff > atol + rtol * max|torch output|``.
        opset: the ONNX opset version.

    Returns:
        OnnxReport: file, names, shapes and the measured difference.

    Raises:
        ModelError: the adapter is not exportable, the export fails, or onnxruntime disagrees with torch.
        MissingDependencyError: torch, onnx or onnxruntime is not installed.
    """
    from maslow.models.base import load_model, read_model_json

    adapter = str(read_model_json(model_folder)["adapter"])
    model = load_model(model_folder)
    spec = getattr(model, "onnx_spec", None)
    if spec is None:
        raise ModelError(f"{model_folder}: adapter {adapter!r} is not exportable to ONNX (no torch network: "
                         "it combines an embedder with a scikit-learn classifier); serve it from Python instead")
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch is not installed: pip install 'maslow[torch]'") from None
    module, example, input_names, output_names, dynamic_axes = spec()
    dst = Path(dst)
    with atomic_path(dst) as tmp, warnings.catch_warnings():
        # the TorchScript exporter announces its retirement and tracing warns about values it bakes in (the check
        # below, on another batch size, is what tells whether the graph is right)
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (example,), str(tmp), input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=dict(dynamic_axes),
                              opset_version=opset, dynamo=False)
        except (RuntimeError, TypeError, ValueError) as e:
            raise ModelError(f"{model_folder}: ONNX export of {adapter!r} failed: {e}") from None
    report = OnnxReport(dst, adapter, opset, tuple(input_names), tuple(output_names), tuple(example.shape),
                        size_bytes=dst.stat().st_size)
    if not check:
        return report
    return _check(report, module, example, dynamic_axes, atol=atol, rtol=rtol, real=_real_image(model))


def _real_image(model: Any) -> Any:
    """For detectors: the busiest image of the model's training data as the exported graph takes it ((1, 3, H, W)
    in [0, 1], longer side ``image_size``), so the check compares real detections, not the empty output of a
    noise image; None when the data is not at hand."""
    if str(getattr(model, "task", "")) not in ("detection", "instance_segmentation"):
        return None
    from maslow.errors import MaslowError
    from maslow.models import _torchdata as TD
    from maslow.models.base import load_data

    try:
        ds = load_data(model.config)
        if not ds.n_annotations:
            return None
        pixels = TD.load_rgb(ds, int(np.argmax(np.bincount(ds.annotations.image))))  # the busiest image
    except (MaslowError, OSError):
        return None
    torch, _ = TD.require_torch()
    h, w, _ = TD.resized_shape(pixels.shape[0], pixels.shape[1], model.config.image_size)
    from PIL import Image

    pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR))
    return TD.image_tensor(torch, pixels)[None]


def _check(report: OnnxReport, module: Any, example: Any, dynamic_axes: dict[str, Any], *, atol: float,
           rtol: float, real: Any = None) -> OnnxReport:
    import torch

    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnx and onnxruntime are not installed: pip install 'maslow[models]'") from None
    onnx.checker.check_model(str(report.path))
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    inputs = [example]
    if 0 in dynamic_axes.get(report.input_names[0], {}):  # a dynamic batch axis: try another batch size too
        g = torch.Generator().manual_seed(1)
        extra = torch.rand((2, *example.shape[1:]), generator=g) * float(example.max().clamp(min=1.0))
        inputs.append(torch.cat([example, extra.to(example.dtype)]))
    real_rows = None
    if real is not None:
        inputs.append(real.to(example.dtype))
        with torch.inference_mode():
            real_rows = int(_outputs(module(inputs[-1]))[0].shape[0])
    worst, bound = 0.0, atol
    for x in inputs:
        with torch.inference_mode():
            ref = _outputs(module(x))
        got = [np.asarray(o) for o in session.run(list(report.output_names), {report.input_names[0]: x.cpu().numpy()})]
        if _is_set(report, dynamic_axes, ref, got):
            ref, got = _sorted_rows(ref), _sorted_rows(got)
        for r, o in zip(ref, got, strict=True):
            if r.shape != np.shape(o):
                raise ModelError(f"{report.path}: onnxruntime output shape must be {r.shape}, got {np.shape(o)}")
            worst = max(worst, float(np.max(np.abs(r.astype(np.float64) - o))) if r.size else 0.0)
            bound = max(bound, atol + rtol * (float(np.max(np.abs(r))) if r.size else 0.0))
    log.info("ONNX %s: max |onnxruntime - torch| = %.3g (bound %.3g)", report.path, worst, bound)
    if worst > bound:
        raise ModelError(f"{report.path}: onnxruntime outputs must match torch within {bound:.3g}, got a max "
                         f"difference of {worst:.3g}")
    return OnnxReport(report.path, report.adapter, report.opset, report.input_names, report.output_names,
                      report.input_shape, tuple(dict.fromkeys(int(x.shape[0]) for x in inputs)), worst, bound,
                      report.size_bytes, real_rows)


def _is_set(report: OnnxReport, dynamic_axes: dict[str, Any], ref: list[np.ndarray], got: list[np.ndarray]) -> bool:
    """Detections: several outputs sharing a dynamic first axis that is not the input's batch axis (rows of one
    image, in score order, where equal scores may come out in either order)."""
    names = report.output_names
    axis0 = {str(dynamic_axes.get(n, {}).get(0, "")) for n in names}
    batch = str(dynamic_axes.get(report.input_names[0], {}).get(0, ""))
    lengths = {a.shape[0] if a.ndim else -1 for a in (*ref, *got)}
    return len(names) > 1 and len(axis0) == 1 and "" not in axis0 and axis0 != {batch} and len(lengths) == 1


def _sorted_rows(outputs: list[np.ndarray]) -> list[np.ndarray]:
    """The outputs with their rows put in one canonical order (sorted on the values rounded to 2 decimals)."""
    n = outputs[0].shape[0]
    rows = np.hstack([o.reshape(n, -1).astype(np.float64) for o in outputs]) if n else np.zeros((0, 1))
    order = np.lexsort(np.round(rows, 2).T[::-1]) if n else np.zeros(0, np.int64)
    return [o[order] for o in outputs]
