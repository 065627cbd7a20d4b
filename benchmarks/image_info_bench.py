"""Image header benchmark: displayed size and EXIF orientation of PNG and JPEG files, without decoding pixels.

Every importer that fills image sizes (COCO/YOLO/CVAT/Label Studio without sizes, ``predict`` on paths, image
folders) calls ``maslow.io.images.image_info`` once per file. Pillow decodes a whole PNG in ``getexif()`` to
look for an eXIf chunk behind the pixels; maslow walks the chunk headers instead. Compared, in one run, on the
same generated files (half with an EXIF orientation, a third of those behind the pixels):

- maslow: ``image_info(path)`` (displayed size, stored size, orientation);
- pillow: ``ImageOps.exif_transpose(Image.open(path)).size``, the usual way to get the displayed size;
- pillow-getexif: ``Image.open(path).getexif()`` plus ``.size`` (the same facts, without the transpose).

All three must agree on every file's displayed size. Prints seconds per file and maslow's speed-up.

Run: ``.venv/bin/python benchmarks/image_info_bench.py [--n 24] [--megapixels 12] [--repeat 3] [--json]``
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from maslow.io.images import image_info


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_files(dst: Path, n: int, megapixels: float, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    w = int(np.sqrt(megapixels * 1e6 * 4 / 3))
    h = int(w * 3 / 4)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) % 256)], axis=2).astype(np.uint8)
    paths = []
    for i in range(n):
        im = Image.fromarray(np.clip(base.astype(np.int16) + rng.integers(-8, 9, 3), 0, 255).astype(np.uint8))
        fmt = "PNG" if i % 2 == 0 else "JPEG"
        p = dst / f"img{i:03d}.{fmt.lower()}"
        exif = Image.Exif()
        oriented = i % 4 in (0, 1)
        if oriented:
            exif[0x0112] = int(rng.choice([3, 6, 8]))
        if fmt == "PNG" and oriented and i % 3 == 0:  # eXIf behind the pixels
            buf = io.BytesIO()
            im.save(buf, "PNG")
            png = buf.getvalue()
            end = png.rindex(b"IEND") - 4
            p.write_bytes(png[:end] + _chunk(b"eXIf", exif.tobytes()[6:]) + png[end:])
        else:
            im.save(p, fmt, exif=exif.tobytes())
        paths.append(p)
    return paths


def _pillow(p: Path) -> tuple[int, int]:
    with Image.open(p) as im:
        return ImageOps.exif_transpose(im).size


def _pillow_getexif(p: Path) -> tuple[int, int]:
    with Image.open(p) as im:
        o = im.getexif().get(0x0112, 1)
        w, h = im.size
    return (h, w) if o in (5, 6, 7, 8) else (w, h)


def _maslow(p: Path) -> tuple[int, int]:
    info = image_info(p)
    return info.width, info.height


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    if args.n < 1 or args.repeat < 1:
        ap.error("--n and --repeat must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.n, args.megapixels)
        _maslow(paths[0])  # imports
        results: dict[str, tuple[float, list[tuple[int, int]]]] = {}
        for name, fn in (("maslow", _maslow), ("pillow", _pillow), ("pillow-getexif", _pillow_getexif)):
            best = float("inf")
            sizes: list[tuple[int, int]] = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                sizes = [fn(p) for p in paths]
                best = min(best, time.perf_counter() - t)
            results[name] = (best, sizes)
    agree = all(r[1] == results["maslow"][1] for r in results.values())
    ref = results["maslow"][0]
    if args.json:
        print(json.dumps({"n_files": args.n, "megapixels": args.megapixels, "sizes_agree": agree,
                          "tools": [{"tool": name, "s_per_file": sec / args.n, "x_maslow": sec / ref}
                                    for name, (sec, _) in results.items()]}, indent=1))
        if not agree:
            raise SystemExit("the tools disagree on a displayed size")
        return
    print(f"{args.n} files of {args.megapixels:g} MP (PNG and JPEG, half EXIF-rotated); sizes agree: {agree}")
    print(f"{'tool':16s} {'s/file':>10s} {'x maslow':>9s}")
    for name, (sec, _) in results.items():
        print(f"{name:16s} {sec / args.n:10.5f} {sec / ref:9.1f}")
    if not agree:
        raise SystemExit("the tools disagree on a displayed size")


if __name__ == "__main__":
    main()
