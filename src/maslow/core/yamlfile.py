"""Reading YAML files (schema, migration, settings, data.yaml) with errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maslow.errors import FormatError


def read_yaml(path: str | Path, *, what: str = "file") -> Any:
    """The parsed YAML document of ``path``.

    Raises:
        FormatError: the file is missing or unreadable, not UTF-8, or malformed (with its line).
    """
    import yaml  # 10 ms to import: only the commands that read YAML pay it

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(f"must be UTF-8 text: {e}", path=path) from None
    except OSError as e:
        raise FormatError(f"can't read the {what}: {e.strerror or e}", path=path) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = None if mark is None else f"line {mark.line + 1}"
        raise FormatError(f"malformed YAML: {getattr(e, 'problem', None) or e}", path=path, record=where) from None
