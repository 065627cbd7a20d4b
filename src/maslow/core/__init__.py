"""The data model: Dataset, its tables, the label schema, box and mask operations, findings."""

from maslow.core import boxes, masks
from maslow.core.dataset import Dataset
from maslow.core.issues import Issue, Report
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, LabelType, Task
from maslow.core.tables import SOURCES, Annotations, Images
from maslow.core.types import as_generator

__all__ = [
    "SOURCES",
    "Annotations",
    "AttributeDef",
    "ClassDef",
    "Dataset",
    "Images",
    "Issue",
    "LabelSchema",
    "LabelType",
    "Polygons",
    "Report",
    "Task",
    "as_generator",
    "boxes",
    "masks",
]
