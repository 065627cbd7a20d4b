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
        Detectors are also run on real images (``images``, or ``n_images`` of the training data: the busiest, the
        busiest of each image size, then evenly spaced ones), each held to the same bounds; the first image off
        fails the export, naming it and the difference. Detector outputs (several outputs sharing a dynamic row
        axis that is not a batch axis) are compared as sets of rows: each torch row is paired with the nearest
        onnxruntime row, since detections of equal score may come out in either order.
    precise sigmoid: onnxruntime's CPU ``Sigmoid`` kernel is accurate to about 3e-8 in absolute terms only, so a
        probability below 1e-6 comes out rounded to a multiple of 2**-25 (or 0) where torch gives it to float
        precision (pytorch/pytorch#147508, microsoft/onnxruntime#22557). A detector ranks such values: the RPN's
        objectness of a trained Faster R-CNN is mostly far below 1e-6, and NMS then the top-``proposals`` cut
        kept other proposals than torch (equal values are ranked by index), so whole detections differed on
        many images. In a detector's graph every ``Sigmoid`` node is therefore replaced by ``1 / (1 + exp(-x))``
        (``Neg``, ``Exp``, ``Add``, ``Reciprocal``), which onnxruntime computes to float precision.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
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
        real_rows: detectors: rows (detections) torch gave on the real images compared, all together; None when
            no real image was at hand (then only a noise image, which may detect nothing).
        real_images: detectors: the real images compared (their paths as the data names them).
        precise_sigmoid: how many ``Sigmoid`` nodes were replaced by ``1 / (1 + exp(-x))`` (module docstring).
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
    real_images: tuple[str, ...] = field(default_factory=tuple)
    precise_sigmoid: int = 0

    @property
    def checked(self) -> bool:
        return bool(self.batch_sizes)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "adapter": self.adapter, "opset": self.opset,
                "input_names": list(self.input_names), "output_names": list(self.output_names),
                "input_shape": list(self.input_shape), "batch_sizes": list(self.batch_sizes),
                "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance, "size_bytes": self.size_bytes,
                "real_rows": self.real_rows, "real_images": list(self.real_images),
                "precise_sigmoid": self.precise_sigmoid}


def _outputs(out: Any) -> list[np.ndarray]:
    items = out if isinstance(out, (tuple, list)) else [out]
    return [np.asarray(o.detach().cpu().numpy()) for o in items]


def export_onnx(model_folder: str | Path, dst: str | Path, *, check: bool = True, atol: float = 1e-4,
                rtol: float = 1e-3, opset: int = OPSET, images: Sequence[str | Path] | None = None,
                n_images: int = 8) -> OnnxReport:
    """Export the model saved in ``model_folder`` to the ONNX file ``dst`` (atomically) and check it.

    Args:
        model_folder: a maslow model folder (``model.json`` + weights).
        dst: the ``.onnx`` file to write.
        check: run onnxruntime on the example input (and another batch size), and for detectors on real images,
            and compare with torch.
        atol, rtol: the check fails when ``max_abs_diff > atol + rtol * max|torch output|``.
        opset: the ONNX opset version.
        images: detectors: image files to check on (each one); None = ``n_images`` of the training data.
        n_images: detectors: how many training images to check on when ``images`` is None (0: none).

    Returns:
        OnnxReport: file, names, shapes and the measured difference.

    Raises:
        ModelError: the adapter is not exportable, the export fails, or onnxruntime refuses or disagrees with the
            graph on an input (named: the example, the batch, or the image's path; then ``dst`` is left as it
            was). FormatError: ``dst`` can't be written, or an image of ``images`` can't be read.
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
            # check below, on another batch size and on real images, is what tells whether the graph is right)
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(module, (example,), str(tmp), input_names=list(input_names),
                                  output_names=list(output_names), dynamic_axes=dict(dynamic_axes),
                                  opset_version=opset, dynamo=False)
            except (RuntimeError, TypeError, ValueError) as e:
                raise ModelError(f"{model_folder}: ONNX export of {adapter!r} failed: {e}") from None
        replaced = precise_sigmoid(tmp) if _is_detector(model) else 0
        report = OnnxReport(dst, adapter, opset, tuple(input_names), tuple(output_names), tuple(example.shape),
                            size_bytes=tmp.stat().st_size, precise_sigmoid=replaced)
        if check:  # on the temporary file: a graph that fails is never put at dst
            report = _check(report, tmp, module, example, dynamic_axes, atol=atol, rtol=rtol,
                            real=_real_images(model, images, n_images))
    return report


def _is_detector(model: Any) -> bool:
    return str(getattr(model, "task", "")) in ("detection", "instance_segmentation")


def precise_sigmoid(file: str | Path) -> int:
    """Replace every ``Sigmoid`` node of the float32 ONNX graph in ``file`` (its subgraphs too) by ``1 / (1 +
    exp(-x))``, which onnxruntime computes to float precision (its ``Sigmoid`` kernel is off by up to ~3e-8: see
    the module docstring); rewrites ``file`` when there was one. Returns how many were replaced."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(file))
    one = "maslow_precise_sigmoid_one"
    count = [0]

    def rewrite(graph: Any) -> None:
        nodes = []
        for node in graph.node:
            for attr in node.attribute:  # If / Loop bodies
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    rewrite(sub)
            if node.op_type != "Sigmoid" or node.domain not in ("", "ai.onnx"):
                nodes.append(node)
                continue
            k = count[0]
            count[0] += 1
            p = f"maslow_precise_sigmoid_{k}"
            nodes += [helper.make_node("Neg", [node.input[0]], [f"{p}_neg"], name=f"{p}_Neg"),
                      helper.make_node("Exp", [f"{p}_neg"], [f"{p}_exp"], name=f"{p}_Exp"),
                      helper.make_node("Add", [f"{p}_exp", one], [f"{p}_add"], name=f"{p}_Add"),
                      helper.make_node("Reciprocal", [f"{p}_add"], [node.output[0]], name=f"{p}_Reciprocal")]
        del graph.node[:]
        graph.node.extend(nodes)

    rewrite(model.graph)
    if count[0]:
        model.graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), one))
        onnx.save(model, str(file))
    return count[0]


def _real_images(model: Any, images: Sequence[str | Path] | None, n: int) -> list[tuple[str, Any]]:
    """For detectors: (what, image tensor) for each image to check on, as the exported graph takes it ((1, 3, H,
    W) in [0, 1], longer side ``image_size``, resized as ``predict`` resizes): each of ``images``, else up to ``n``
    training images (``_sample``), so the check compares real detections, not only the empty output of a noise
    image. Training data that is not at hand gives none; an image of ``images`` that can't be read raises."""
    if not _is_detector(model) or (images is None and n <= 0):
        return []
    from maslow.errors import MaslowError
    from maslow.models import _torchdata as TD
    from maslow.models.base import load_data
    from maslow.models.detect import _image_only

    torch, _ = TD.require_torch()
    if images is not None:
        ds, rows, what = TD.as_dataset(list(images)), None, "image"
    else:
        try:
            ds = load_data(model.config)
        except (MaslowError, OSError) as e:
            log.info("ONNX check: the training data is not at hand (%s): no real image checked", e)
            return []
        rows, what = _sample(ds, n), "training image"
    out = []
    for i in range(ds.n_images) if rows is None else rows:
        try:
            pixels = _image_only(ds, i, model.config.image_size).pixels
        except (MaslowError, OSError) as e:
            if rows is None:
                raise
            log.info("ONNX check: training image %s left out: %s", ds.images.path[i], e)
            continue
        out.append((f"{what} {str(ds.images.path[i])!r}", TD.image_tensor(torch, pixels)[None]))
    return out


def _sample(ds: Any, n: int) -> list[int]:
    """Up to ``n`` rows of ``ds``: the image with the most annotations, the busiest of each other image size (up to
    half of ``n``), then evenly spaced rows; each once, in that order."""
    if not ds.n_images or n <= 0:
        return []
    counts = np.bincount(ds.annotations.image, minlength=ds.n_images)
    picked = dict.fromkeys([int(np.argmax(counts))])
    hw = np.stack([np.asarray(ds.images.height), np.asarray(ds.images.width)], 1)
    _, first, inverse = np.unique(hw, axis=0, return_index=True, return_inverse=True)
    for g in np.argsort(first, kind="stable")[: max(n // 2, 1)]:
        rows = np.flatnonzero(inverse.reshape(-1) == g)
        picked.setdefault(int(rows[np.argmax(counts[rows])]))
    for i in np.linspace(0, ds.n_images - 1, n).round().astype(int).tolist():
        if len(picked) >= n:
            break
        picked.setdefault(int(i))
    return list(picked)[:n]


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
           atol: float, rtol: float, real: Sequence[tuple[str, Any]] = ()) -> OnnxReport:
    """Compare onnxruntime on ``file`` (the graph about to become ``report.path``) with ``module`` on the example
    input, a batch of another size (when the batch axis is dynamic) and each ``(what, tensor)`` of ``real``.

    Raises:
        ModelError: onnxruntime refuses the graph or an input, or an output is off by more than its bound on an
            input (named).
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
    inputs = [("the example input", example)]
    if 0 in dynamic_axes.get(report.input_names[0], {}):  # a dynamic batch axis: try another batch size too
        g = torch.Generator().manual_seed(1)
        extra = torch.rand((2, *example.shape[1:]), generator=g) * float(example.max().clamp(min=1.0))
        inputs.append(("a batch of 3 (the example and 2 random inputs)", torch.cat([example, extra.to(example.dtype)])))
    inputs += [(what, x.to(example.dtype)) for what, x in real]
    real_rows = 0 if real else None
    worst, bound = 0.0, atol
    for k, (what, x) in enumerate(inputs):
        on = f"on {what} (input shape {tuple(x.shape)})"
        with torch.inference_mode():
            ref = _outputs(module(x))
        try:
            got = [np.asarray(o) for o in session.run(list(report.output_names),
                                                       {report.input_names[0]: x.cpu().numpy()})]
        except refused as e:
            raise ModelError(f"{where}: onnxruntime must run the graph {on} as torch does, got "
                             f"{type(e).__name__}: {str(e).strip()}") from None
        if real_rows is not None and k >= len(inputs) - len(real):
            real_rows += int(ref[0].shape[0])
        limits = [atol + rtol * (float(np.max(np.abs(r))) if r.size else 0.0) for r in ref]
        if _is_set(report, dynamic_axes, ref, got):
            got = _paired_rows(ref, got, limits)
        for name, r, o, limit in zip(report.output_names, ref, got, limits, strict=True):
            if r.shape != np.shape(o):
                raise ModelError(f"{where}: onnxruntime output {name!r} shape must be {r.shape} as torch's {on}, "
                                 f"got {np.shape(o)}")
            diff = float(np.max(np.abs(r.astype(np.float64) - o))) if r.size else 0.0
            if diff > limit:
                raise ModelError(f"{where}: onnxruntime output {name!r} must match torch within {limit:.3g}, "
                                 f"got a max difference of {diff:.3g} {on}")
            if diff > worst or (diff == worst and limit > bound):  # report the bound of the worst output
                worst, bound = diff, limit
    log.info("ONNX %s: max |onnxruntime - torch| = %.3g (bound %.3g)", report.path, worst, bound)
    batches = tuple(dict.fromkeys(int(x.shape[0]) for what, x in inputs[: len(inputs) - len(real)]))
    return dataclasses.replace(report, batch_sizes=batches, max_abs_diff=worst, tolerance=bound,
                               real_rows=real_rows, real_images=tuple(what for what, _ in real))


def _is_set(report: OnnxReport, dynamic_axes: dict[str, Any], ref: list[np.ndarray], got: list[np.ndarray]) -> bool:
    """Detections: several outputs sharing a dynamic first axis that is not the input's batch axis (rows of one
    image, in score order, where equal scores may come out in either order)."""
    names = report.output_names
    axis0 = {str(dynamic_axes.get(n, {}).get(0, "")) for n in names}
    batch = str(dynamic_axes.get(report.input_names[0], {}).get(0, ""))
    lengths = {a.shape[0] if a.ndim else -1 for a in (*ref, *got)}
    return len(names) > 1 and len(axis0) == 1 and "" not in axis0 and axis0 != {batch} and len(lengths) == 1


def _paired_rows(ref: list[np.ndarray], got: list[np.ndarray], limits: list[float]) -> list[np.ndarray]:
    """``got`` with its rows reordered to pair with ``ref``'s: each torch row with the onnxruntime row nearest to
    it (the largest difference over the outputs, each in units of its own bound), closest pairs first. Rows of
    equal score may come out in either order; rounding both sides to a grid and sorting split near-equal values
    that straddle a grid line."""
    n = ref[0].shape[0]
    if n < 2:
        return got
    cost = np.zeros((n, n))
    for r, o, limit in zip(ref, got, limits, strict=True):
        a, b = r.reshape(n, -1).astype(np.float64), np.asarray(o).reshape(n, -1).astype(np.float64)
        np.maximum(cost, np.abs(a[:, None, :] - b[None, :, :]).max(axis=2) / max(limit, 1e-12), out=cost)
    pair, used, left = np.full(n, -1), np.zeros(n, bool), n
    for flat in np.argsort(cost, axis=None, kind="stable").tolist():
        i, j = divmod(flat, n)
        if pair[i] < 0 and not used[j]:
            pair[i], used[j], left = j, True, left - 1
            if not left:
                break
    return [np.asarray(o)[pair] for o in got]
