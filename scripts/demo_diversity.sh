#!/usr/bin/env bash
# Level 1, diverse data: class balance and its remedies, duplicates and split leakage, coverage with plots.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
mkdir -p "$OUT"
[ -f "$OUT/shapes/annotations.json" ] || maslow sample "$OUT/shapes" --n-images 48 >/dev/null

step "D1. Plant duplicates: copy, mirror, re-encode and crop some train images into the val split"
python - "$OUT/shapes" "$OUT/diversity" <<'PY'
import shutil, sys
from pathlib import Path
from PIL import Image, ImageOps
from maslow import io
from maslow.core import Images

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
if dst.exists():
    shutil.rmtree(dst)
shutil.copytree(src / "images", dst / "images")
ds = io.read(src / "annotations.json", "coco", images_root=src)
im = ds.images
n_objects = [0] * len(im)
for i in ds.annotations.image.tolist():
    n_objects[i] += 1
# images with objects: a blank (noise-only) frame has no stable perceptual hash once re-encoded
train = [i for i, s in enumerate(im.split.tolist()) if s == "train" and n_objects[i] > 0][:4]
paths, extra = [], []
for k, i in enumerate(train):
    p = dst / str(im.path[i])
    pic = Image.open(p)
    name = f"images/planted_{k}.png"
    if k == 0:
        shutil.copy(p, dst / name)                                          # exact copy
    elif k == 1:
        ImageOps.mirror(pic).save(dst / name)                               # mirror image
    elif k == 2:
        name = name.replace(".png", ".jpg"); pic.convert("RGB").save(dst / name, quality=50)  # JPEG re-encode
    else:
        w, h = pic.size; pic.crop((w // 20, h // 20, w // 20 + int(0.9 * w), h // 20 + int(0.9 * h))).save(dst / name)
    paths.append(name)
    extra.append(Image.open(dst / name).size)
images = Images(path=[*im.path.tolist(), *paths], width=[*im.width.tolist(), *[s[0] for s in extra]],
                height=[*im.height.tolist(), *[s[1] for s in extra]], split=[*im.split.tolist(), *["val"] * len(paths)])
io.write(ds.replace(images=images, root=dst), dst / "annotations.json", "coco")
print(f"planted {len(paths)} copies of train images into val: {', '.join(paths)}")
PY

step "D2. Class balance, with remedies computed on the train split (weights, repeat factors, labels needed)"
maslow diversity balance "$OUT/diversity/annotations.json" --from coco --split train --repeat-threshold 0.5 \
  --rare-share 0.3 --plot "$OUT/diversity/plots"

step "D3. Duplicates: exact and near (mirror, re-encode, crop), clusters with the copy to keep, leakage across splits"
maslow diversity duplicates "$OUT/diversity/annotations.json" --from coco --plot "$OUT/diversity/plots"

step "D4. Coverage of image, object and metadata properties, under-covered values named, plots"
maslow diversity coverage "$OUT/diversity/annotations.json" --from coco --plot "$OUT/diversity/plots"
