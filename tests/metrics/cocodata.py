"""Test helpers: COCO dicts -> maslow Datasets, pycocotools runs, and generated COCO cases.

``datasets(gt, results)`` builds truth and predictions the way the COCO reader does (xyxy boxes, the COCO
``bbox``/``area``/``id``/``num_keypoints`` kept in ``annotations.extra``, polygons as float arrays, RLE
masks compressed); ``pycoco(gt, results, ...)`` runs pycocotools 2.0.11 on deep copies, silently.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array


def _segm(seg: Any, h: int, w: int) -> tuple[Any, Any]:
    """(polygon, mask) columns of a COCO segmentation."""
    if isinstance(seg, list):
        return [np.asarray(p, dtype=np.float64) for p in seg], None
    counts = seg["counts"]
    if isinstance(counts, list):
        return None, mask_utils.frPyObjects(seg, h, w)
    return None, {"size": list(seg["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def truth_from_coco(gt: dict[str, Any]) -> Dataset:
    cats = sorted(gt["categories"], key=lambda c: c["id"]) if gt.get("_sort_cats") else gt["categories"]
    schema = LabelSchema(classes=tuple(ClassDef(name=c["name"], id=c["id"]) for c in cats))
    images = gt["images"]
    row_of = {im["id"]: i for i, im in enumerate(images)}
    imgs = Images(
        path=obj_array([im.get("file_name", f"{im['id']}.jpg") for im in images]),
        width=np.asarray([im["width"] for im in images], np.int64),
        height=np.asarray([im["height"] for im in images], np.int64),
        extra={"coco_id": np.asarray([im["id"] for im in images], np.int64)},
    )
    return Dataset(schema=schema, images=imgs, annotations=_annotations(gt["annotations"], schema, row_of, images,
                                                                        truth=True))


def pred_from_coco(results: list[dict[str, Any]], truth: Dataset, gt: dict[str, Any]) -> Dataset:
    row_of = {im["id"]: i for i, im in enumerate(gt["images"])}
    ann = _annotations(results, truth.schema, row_of, gt["images"], truth=False, cats=gt["categories"])
    return Dataset(schema=truth.schema, images=truth.images, annotations=ann)


def _annotations(anns: list[dict[str, Any]], schema: LabelSchema, row_of: dict[Any, int], images: list[Any], *,
                 truth: bool, cats: list[dict[str, Any]] | None = None) -> Annotations:
    label_of = {c.id: i for i, c in enumerate(schema.classes)}
    n = len(anns)
    image = np.asarray([row_of[a["image_id"]] for a in anns], np.int64)
    label = np.asarray([label_of[a["category_id"]] for a in anns], np.int64)
    box = np.full((n, 4), np.nan)
    bbox = np.full((n, 4), np.nan)
    polygon = np.full(n, None, dtype=object)
    mask = np.full(n, None, dtype=object)
    kp = None
    for i, a in enumerate(anns):
        if "bbox" in a:
            b = np.asarray(a["bbox"], np.float64)
            bbox[i] = b
            box[i] = [b[0], b[1], b[0] + b[2], b[1] + b[3]]
        if "segmentation" in a:
            im = images[image[i]]
            polygon[i], mask[i] = _segm(a["segmentation"], im["height"], im["width"])
        if "keypoints" in a:
            if kp is None:
                kp = np.full((n, len(a["keypoints"]) // 3, 3), np.nan)
            kp[i] = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
    extra: dict[str, np.ndarray] = {"coco_bbox": bbox}
    if truth:
        extra["area"] = np.asarray([a.get("area", np.nan) for a in anns], np.float64)
        extra["coco_id"] = np.asarray([a["id"] for a in anns], np.int64)
        if any("num_keypoints" in a for a in anns):
            extra["num_keypoints"] = np.asarray([a.get("num_keypoints", np.nan) for a in anns], np.float64)
    return Annotations.sort_rows(
        image=image, label=label, box=box,
        score=None if truth else np.asarray([a["score"] for a in anns], np.float64),
        polygon=polygon if any(p is not None for p in polygon) else None,
        mask=mask if any(m is not None for m in mask) else None,
        keypoints=kp,
        iscrowd=np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool),
        source="human" if truth else "model",
        extra=extra,
    )


def datasets(gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[Dataset, Dataset]:
    truth = truth_from_coco(gt)
    return truth, pred_from_coco(results, truth, gt)


def pycoco(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str = "bbox", *, summarize: bool = True,
           **params: Any) -> COCOeval:
    """Run pycocotools (evaluate, accumulate, summarize) quietly on copies; ``params`` set COCOeval.params."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy({k: v for k, v in gt.items() if not k.startswith("_")})
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else _empty_results(coco_gt)
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        for k, v in params.items():
            setattr(ev.params, k, v)
        ev.evaluate()
        ev.accumulate()
        if summarize:
            ev.summarize()
    return ev


def _empty_results(coco_gt: COCO) -> COCO:
    res = COCO()
    res.dataset = {"images": list(coco_gt.dataset["images"]), "categories": copy.deepcopy(coco_gt.dataset["categories"]),
                   "annotations": []}
    res.createIndex()
    return res


def assert_same(ev: COCOeval, result: Any, *, stats: bool = True) -> None:
    """Every cell of precision, recall and scores, and every stat, equal (bit for bit)."""
    np.testing.assert_array_equal(result.precision, ev.eval["precision"])
    np.testing.assert_array_equal(result.recall, ev.eval["recall"])
    np.testing.assert_array_equal(result.scores, ev.eval["scores"])
    if stats:
        np.testing.assert_array_equal(result.stats, np.asarray(ev.stats, dtype=np.float64))


def decode(rle: dict[str, Any]) -> np.ndarray:
    """pycocotools' decode, without the DeprecationWarning its Cython __array__ raises under numpy 2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_utils.decode(rle))


# -- generated cases -------------------------------------------------------------------------------------

def random_case(seed: int, *, n_images: int = 12, n_cats: int = 4, max_gt: int = 8, max_dt: int = 14,
                crowd_rate: float = 0.1, tie_rate: float = 0.4, size: int = 200, decimals: int = 2,
                empty_rate: float = 0.15) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Many small images with overlapping boxes, duplicates, crowds, score ties, empty images on both sides."""
    rng = np.random.default_rng(seed)
    cat_ids = sorted(rng.choice(np.arange(1, 3 * n_cats + 1), n_cats, replace=False).tolist())
    cats = [{"id": int(c), "name": f"c{c}"} for c in cat_ids]
    img_ids = rng.permutation(np.arange(1, 4 * n_images + 1))[:n_images].tolist()
    images = [{"id": int(i), "width": size, "height": size, "file_name": f"{i}.jpg"} for i in img_ids]
    anns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    ann_id = int(rng.integers(0, 2))  # sometimes a COCO annotation id 0
    for im in images:
        boxes = []
        n_gt = 0 if rng.random() < empty_rate else int(rng.integers(1, max_gt + 1))
        for _ in range(n_gt):
            w, h = np.round(np.exp(rng.uniform(np.log(2), np.log(size * 0.7), 2)), decimals)
            x, y = np.round(rng.uniform(0, size - np.array([w, h])), decimals)
            if boxes and rng.random() < 0.2:  # a near-duplicate of an earlier object
                bx = boxes[int(rng.integers(len(boxes)))]
                x, y, w, h = bx[0] + np.round(rng.normal(0, 1), decimals), bx[1], bx[2], bx[3]
            cat = int(rng.choice(cat_ids))
            crowd = int(rng.random() < crowd_rate)
            area = float(np.round(w * h * rng.uniform(0.5, 1.0), 3))
            box = [float(x), float(y), float(w), float(h)]
            boxes.append((*box, cat))
            anns.append({"id": ann_id, "image_id": im["id"], "category_id": cat, "bbox": box, "area": area,
                         "iscrowd": crowd})
            ann_id += 1
        n_dt = 0 if rng.random() < empty_rate else int(rng.integers(1, max_dt + 1))
        for _ in range(n_dt):
            if boxes and rng.random() < 0.7:
                x, y, w, h, cat = boxes[int(rng.integers(len(boxes)))]
                x, y = x + rng.normal(0, w * 0.1), y + rng.normal(0, h * 0.1)
                w, h = w * np.exp(rng.normal(0, 0.15)), h * np.exp(rng.normal(0, 0.15))
                if rng.random() < 0.15:
                    cat = int(rng.choice(cat_ids))
            else:
                w, h = np.exp(rng.uniform(np.log(2), np.log(size * 0.7), 2))
                x, y = rng.uniform(0, size - np.array([w, h]))
                cat = int(rng.choice(cat_ids))
            score = float(np.round(rng.random(), 1 if rng.random() < tie_rate else 4))
            box = [float(np.round(v, decimals)) for v in (x, y, max(w, 0.5), max(h, 0.5))]
            results.append({"image_id": im["id"], "category_id": cat, "bbox": box, "score": score})
    rng.shuffle(results)  # type: ignore[arg-type]
    return {"images": images, "categories": cats, "annotations": anns}, results


def _poly(rng: np.random.Generator, cx: float, cy: float, r: float, n: int, decimals: int = 2) -> list[float]:
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.5, 1.0, n)
    pts = np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1)
    return [float(v) for v in np.round(pts, decimals).ravel()]


def random_segm_case(seed: int, *, n_images: int = 8, n_cats: int = 3, size: int = 64,
                     bbox_in_results: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Polygon truth (some multi-part, some past the border), uncompressed-RLE crowds, RLE predictions."""
    rng = np.random.default_rng(seed)
    cats = [{"id": i + 1, "name": f"c{i + 1}"} for i in range(n_cats)]
    images = [{"id": i + 1, "width": int(size + rng.integers(0, 20)), "height": size, "file_name": f"{i}.png"}
              for i in range(n_images)]
    anns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for im in images:
        h, w = im["height"], im["width"]
        objs = []
        for _ in range(int(rng.integers(0, 6))):
            cx, cy, r = rng.uniform(-5, w + 5), rng.uniform(-5, h + 5), rng.uniform(2, 25)
            cat = int(rng.integers(1, n_cats + 1))
            crowd = rng.random() < 0.12
            parts = [_poly(rng, cx, cy, r, int(rng.integers(3, 9)))]
            if rng.random() < 0.2:
                parts.append(_poly(rng, cx + r, cy, r / 2, 5))
            rle = mask_utils.merge(mask_utils.frPyObjects(parts, h, w))
            area = float(mask_utils.area(rle))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            if crowd:
                m = decode(rle).ravel(order="F")
                change = np.flatnonzero(np.diff(m)) + 1
                runs = np.diff(np.r_[0, change, m.size]).tolist()
                if m.size and m[0] == 1:
                    runs = [0, *runs]
                seg: Any = {"size": [h, w], "counts": runs}
            else:
                seg = parts
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": cat, "segmentation": seg,
                         "area": area, "bbox": bbox, "iscrowd": int(crowd)})
            objs.append((cx, cy, r, cat))
        for _ in range(int(rng.integers(0, 8))):
            if objs and rng.random() < 0.7:
                cx, cy, r, cat = objs[int(rng.integers(len(objs)))]
                cx, cy, r = cx + rng.normal(0, 2), cy + rng.normal(0, 2), r * np.exp(rng.normal(0, 0.2))
            else:
                cx, cy, r, cat = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, 20), int(rng.integers(1, 4))
            rle = mask_utils.merge(mask_utils.frPyObjects([_poly(rng, cx, cy, r, 7)], h, w))
            det: dict[str, Any] = {"image_id": im["id"], "category_id": int(cat),
                                   "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
                                   "score": float(np.round(rng.random(), 2))}
            if bbox_in_results:
                det["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
            results.append(det)
    return {"images": images, "categories": cats, "annotations": anns}, results


def random_keypoint_case(seed: int, *, n_images: int = 10, n_kp: int = 17, size: int = 300
                         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Person-like truth with partly labelled keypoints (some none: num_keypoints 0), crowds, predictions."""
    rng = np.random.default_rng(seed)
    cats = [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(n_kp)], "skeleton": []}]
    images = [{"id": i + 1, "width": size, "height": size, "file_name": f"{i}.jpg"} for i in range(n_images)]
    anns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for im in images:
        people = []
        for _ in range(int(rng.integers(0, 6))):
            w, h = np.round(rng.uniform(10, 150, 2), 2)
            x, y = np.round(rng.uniform(0, size - np.array([w, h])), 2)
            kx = np.round(rng.uniform(x, x + w, n_kp), 2)
            ky = np.round(rng.uniform(y, y + h, n_kp), 2)
            v = rng.choice([0, 1, 2], n_kp, p=[0.3, 0.2, 0.5])
            if rng.random() < 0.2:
                v[:] = 0
            kx[v == 0] = 0
            ky[v == 0] = 0
            crowd = int(rng.random() < 0.08)
            kps = np.stack([kx, ky, v], 1).ravel().tolist()
            area = float(np.round(w * h * rng.uniform(0.4, 0.9), 2))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": 1, "keypoints": kps,
                         "num_keypoints": int((v > 0).sum()), "bbox": [float(x), float(y), float(w), float(h)],
                         "area": area, "iscrowd": crowd})
            people.append((x, y, w, h, kx, ky))
        for _ in range(int(rng.integers(0, 9))):
            if people and rng.random() < 0.75:
                x, y, w, h, kx, ky = people[int(rng.integers(len(people)))]
                scale = 0.02 * (w + h) * rng.uniform(0.2, 3)
                dx = kx + rng.normal(0, scale, n_kp)
                dy = ky + rng.normal(0, scale, n_kp)
                if rng.random() < 0.3:  # a prediction near a person without labelled keypoints
                    dx = rng.uniform(x - w, x + 2 * w, n_kp)
                    dy = rng.uniform(y - h, y + 2 * h, n_kp)
            else:
                dx, dy = rng.uniform(0, size, n_kp), rng.uniform(0, size, n_kp)
            kps = np.stack([np.round(dx, 2), np.round(dy, 2), np.ones(n_kp)], 1).ravel().tolist()
            results.append({"image_id": im["id"], "category_id": 1, "keypoints": kps,
                            "score": float(np.round(rng.random(), 2))})
    return {"images": images, "categories": cats, "annotations": anns}, results


# -- hand-built cases ------------------------------------------------------------------------------------

def gt_dict(images: list[tuple[int, int, int]], anns: list[dict[str, Any]], cats: tuple[int, ...] = (1,),
            ) -> dict[str, Any]:
    """A COCO ground-truth dict: images as (id, width, height); annotation ids numbered from 1 unless given."""
    out = []
    for i, a in enumerate(anns):
        a = dict(a)
        a.setdefault("id", i + 1)
        a.setdefault("iscrowd", 0)
        if "area" not in a and "bbox" in a:
            a["area"] = a["bbox"][2] * a["bbox"][3]
        out.append(a)
    return {"images": [{"id": i, "width": w, "height": h, "file_name": f"{i}.jpg"} for i, w, h in images],
            "categories": [{"id": c, "name": f"c{c}"} for c in cats], "annotations": out}


def ann(image: int, bbox: list[float], cat: int = 1, **kw: Any) -> dict[str, Any]:
    return {"image_id": image, "category_id": cat, "bbox": bbox, **kw}


def det(image: int, bbox: list[float], score: float, cat: int = 1, **kw: Any) -> dict[str, Any]:
    return {"image_id": image, "category_id": cat, "bbox": bbox, "score": score, **kw}


def pycoco_params(**opts: Any) -> dict[str, Any]:
    """coco_map options -> COCOeval.params attributes."""
    out: dict[str, Any] = {}
    if "max_dets" in opts:
        out["maxDets"] = list(opts["max_dets"])
    if "iou_thresholds" in opts:
        out["iouThrs"] = np.asarray(opts["iou_thresholds"], np.float64)
    if "recall_thresholds" in opts:
        out["recThrs"] = np.asarray(opts["recall_thresholds"], np.float64)
    if "area_ranges" in opts:
        out["areaRng"] = [list(v) for v in opts["area_ranges"].values()]
        out["areaRngLbl"] = list(opts["area_ranges"])
    if "use_cats" in opts:
        out["useCats"] = int(opts["use_cats"])
    if "kpt_sigmas" in opts:
        out["kpt_oks_sigmas"] = np.asarray(opts["kpt_sigmas"], np.float64)
    return out


def check(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str = "bbox", **opts: Any
          ) -> tuple[Any, COCOeval]:
    """Evaluate with maslow and pycocotools; assert every array cell and stat equal; return both."""
    from maslow.metrics import coco_map

    truth, pred = datasets(gt, results)
    short = len(opts.get("max_dets", (1, 2, 3))) < 3 and iou_type != "keypoints"
    ev = pycoco(gt, results, iou_type, summarize=not short, **pycoco_params(**opts))
    result = coco_map(truth, pred, iou_type=iou_type, **opts)
    assert_same(ev, result, stats=not short)
    return result, ev
