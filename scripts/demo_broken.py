"""Plant technical import errors in a COCO file, for the demo: what `maslow import` finds."""

import json
import sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
coco = json.loads(src.read_text())
images, anns = coco["images"], coco["annotations"]
images[0]["file_name"] = "images/does_not_exist.png"  # a missing image file
images[1]["width"] += 40  # a declared size that disagrees with the file
anns[0]["image_id"] = 999_999  # an annotation pointing at no image
anns[1]["category_id"] = 77  # a category id not in the schema
anns[2]["id"] = anns[3]["id"]  # a duplicate annotation id
for a in anns[4:14]:  # boxes written as xyxy instead of xywh
    x, y, w, h = a["bbox"]
    a["bbox"] = [x, y, x + w, y + h]
anns[15]["bbox"][0] = -30.0  # out of bounds
dst.write_text(json.dumps(coco))
print(f"wrote {dst} with 7 kinds of planted errors")
