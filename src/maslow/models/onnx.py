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
        each output is compared with torch's and held to its own bound: ``max|onnxruntime - torch|`` must be <=
        ``atol + rtol * max|torch output|`` (so a small output, such as scores, is not judged by a large one's
        scale). The graph is checked before it is put at ``dst``: one that fails leaves ``dst`` as it was.
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
        tolerance: the bound of the output that difference is in (each output has its own). size_bytes: file size.
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
        ModelError: the adapter is not exportable, the export fails, or onnxruntime refuses or disagrees with the
            graph (then ``dst`` is left as it was). FormatError: ``dst`` can't be written.
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
    with atomic_path(dst) as tmp:
        with warnings.catch_warnings():
            # the TorchScript exporter announces its retirement and tracing warns about values it bakes in (the
            # check below, on another batch size, is what tells whether the graph is right)
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(module, (example,), str(tmp), input_names=list(input_names),
                                  output_names=list(output_names), dynamic_axes=dict(dynamic_axes),
                                  opset_version=opset, dynamo=False)
            except (RuntimeError, TypeError, ValueError) as e:
                raise ModelError(f"{model_folder}: ONNX export of {adapter!r} failed: {e}") from None
        report = OnnxReport(dst, adapter, opset, tuple(input_names), tuple(output_names), tuple(example.shape),
                            size_bytes=tmp.stat().st_size)
        if check:  # on the temporary file: a graph that fails is never put at dst
            report = _check(report, tmp, module, example, dynamic_axes, atol=atol, rtol=rtol,
                            real=_real_image(model))
    return report


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


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """The exceptions onnx's checker and onnxruntime raise for a graph they refuse (none derives from a builtin)."""
    import onnx
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError", "RuntimeException",
             "InvalidProtobuf", "NotImplemented", "InvalidGraph", "EPFail")
    found = (getattr(state, n, None) for n in names)
    return (onnx.checker.ValidationError, RuntimeError, ValueError,
            *(c for c in found if isinstance(c, type) and issubclass(c, BaseException)))


def _check(report: OnnxReport, file: Path, module: Any, example: Any, dynamic_axes: dict[str, Any], *,
           atol: float, rtol: float, real: Any = None) -> OnnxReport:
    """Compare onnxruntime on ``file`` (the graph about to become ``report.path``) with ``module``.

    Raises:
        ModelError: onnxruntime refuses the graph or an input, or an output is off by more than its bound.
    """
    import torch

    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnx and onnxruntime are not installed: pip install 'maslow[models]'") from None
    where = f"{report.path} (not written)"
    refused = _runtime_errors()
    try:
        onnx.checker.check_model(str(file))
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    except refused as e:
        raise ModelError(f"{where}: the exported graph must load in onnxruntime, got {type(e).__name__}: "
                         f"{str(e).strip()}") from None
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
        try:
            got = [np.asarray(o) for o in session.run(list(report.output_names),
                                                       {report.input_names[0]: x.cpu().numpy()})]
        except refused as e:
            raise ModelError(f"{where}: onnxruntime must run the graph on an input of shape {tuple(x.shape)} as "
                             f"torch does, got {type(e).__name__}: {str(e).strip()}") from None
        if _is_set(report, dynamic_axes, ref, got):
            ref, got = _sorted_rows(ref), _sorted_rows(got)
        for name, r, o in zip(report.output_names, ref, got, strict=True):
            if r.shape != np.shape(o):
                raise ModelError(f"{where}: onnxruntime output {name!r} shape must be {r.shape} for an input of "
                                 f"shape {tuple(x.shape)}, got {np.shape(o)}")
            diff = float(np.max(np.abs(r.astype(np.float64) - o))) if r.size else 0.0
            limit = atol + rtol * (float(np.max(np.abs(r))) if r.size else 0.0)
            if diff > limit:
                raise ModelError(f"{where}: onnxruntime output {name!r} must match torch within {limit:.3g}, "
                                 f"got a max difference of {diff:.3g} for an input of shape {tuple(x.shape)}")
            if diff > worst or (diff == worst and limit > bound):  # report the bound of the worst output
                worst, bound = diff, limit
    log.info("ONNX %s: max |onnxruntime - torch| = %.3g (bound %.3g)", report.path, worst, bound)
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
