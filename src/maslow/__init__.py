"""maslow: the hierarchy of needs of computer-vision machine learning.

Import stays light: only numpy and pycocotools load here; torch, fastapi and the rest load inside the
packages that need them.
"""

from maslow import core, io
from maslow.core import Annotations, ClassDef, Dataset, Images, Issue, LabelSchema, Report, Task
from maslow.errors import (
    FormatError,
    InvalidDatasetError,
    MaslowError,
    MaslowWarning,
    MissingDependencyError,
    SchemaError,
)

__version__ = "0.1.0"

__all__ = [
    "Annotations",
    "ClassDef",
    "Dataset",
    "FormatError",
    "Images",
    "InvalidDatasetError",
    "Issue",
    "LabelSchema",
    "MaslowError",
    "MaslowWarning",
    "MissingDependencyError",
    "Report",
    "SchemaError",
    "Task",
    "__version__",
    "core",
    "io",
]
