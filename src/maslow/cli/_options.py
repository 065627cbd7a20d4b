"""``--read-option KEY=VALUE`` / ``--write-option KEY=VALUE``: the keyword arguments of a reader or writer, each
VALUE read as YAML and checked against the parameter's type annotation before the call, so that a bad value is
refused with the flag, the key, the type expected and the value given (exit 2), never passed on to crash
(``decimals=abc``) or to be taken as something else (``indent=abc`` in the JSON, ``images=maybe`` as true).

Checked: ``bool``, ``int`` (not a bool), ``float`` (an int is taken), ``str``, ``Path`` (a text, converted),
``Literal[...]``, ``None``, unions of these (``X | None``), ``list``/``tuple``/``Sequence`` and
``dict``/``Mapping`` of them. Anything else (``Any``, a class YAML can't give) is passed as it is.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import types
import typing
from pathlib import PurePath
from typing import Any

from maslow.errors import MaslowError

#: parameters the CLI fills itself (progress: the CLI's bar)
RESERVED = frozenset({"src", "dst", "ds", "images_root", "strict", "progress"})


class _Mismatch(Exception):
    """A value that doesn't fit the type."""


def parse_options(pairs: list[str] | None, func: Any, *, flag: str, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings as keyword arguments of ``func``: VALUE read as YAML (empty: null) and checked against
    the type annotation of parameter KEY (a ``str`` for a ``Path`` parameter becomes a ``Path``; a list for a
    ``tuple`` one a tuple). ``-`` in KEY reads as ``_``.

    Args:
        pairs: the flag's values, e.g. ``["decimals=4", "images=false"]``.
        func: the reader's ``parse`` or the writer's ``write``; its keyword-only parameters (but ``src``, ``dst``,
            ``ds``, ``images_root``, ``strict`` and ``progress``) are the keys it takes.
        flag: the flag's name, for messages (``--write-option``).
        what: what takes the options, for messages (``yolo writer``).

    Returns:
        The keyword arguments.

    Raises:
        MaslowError: a pair without ``=``, an unknown key (the message lists the keys ``func`` takes), a VALUE that
            is not YAML, or one of another type than the parameter's (the message names the flag, the key, the type
            expected and the value given).

    Example:
        >>> from maslow.io import yolo
        >>> parse_options(["decimals=4", "images=false"], yolo.write, flag="--write-option", what="yolo writer")
        {'decimals': 4, 'images': False}
    """
    import yaml  # loads on first use: most commands pass no options

    if not pairs:
        return {}
    params = inspect.signature(func).parameters
    known = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in RESERVED]
    hints = _hints(func)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise MaslowError(f"{flag} must be KEY=VALUE, got {pair!r}")
        if key not in known:
            takes = ", ".join(known) if known else "no options"
            raise MaslowError(f"{flag} {key!r}: the {what} takes {takes}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise MaslowError(f"{flag} {key}: VALUE must be YAML, got {text!r} ({e.__class__.__name__})") from None
        tp = hints.get(key, Any)
        try:
            out[key] = convert(value, tp)
        except _Mismatch:
            fix = ""
            if isinstance(value, bool | int | float) and _takes_text(tp):
                fix = f". Quote it to pass it as text: {key}='{text.strip()}'"
            raise MaslowError(f"{flag} {key}: the {what}'s {key} must be {describe(tp)}, got {_shown(text, value)}{fix}"
                              ) from None
    return out


def _hints(func: Any) -> dict[str, Any]:
    """``func``'s parameter annotations, resolved (none where they can't be: nothing is checked then)."""
    try:
        return typing.get_type_hints(func)
    except (NameError, TypeError, AttributeError):  # an annotation that doesn't resolve: its values go unchecked
        return {}


def _shown(text: str, value: Any) -> str:
    """The VALUE as typed and what YAML read it as: ``'abc' (read as a text)``."""
    kind = {type(None): "null", bool: "true/false", int: "an integer", float: "a number", str: "a text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
    return f"{text.strip()!r} (read as {kind})"


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _takes_text(tp: Any) -> bool:
    if _is_union(tp):
        return any(_takes_text(t) for t in typing.get_args(tp))
    return tp is str or (isinstance(tp, type) and issubclass(tp, PurePath))


def convert(value: Any, tp: Any) -> Any:
    """``value`` as a value of type ``tp`` (a text for a ``Path`` becomes one, a list for a ``tuple`` a tuple; else
    unchanged); raises ``_Mismatch`` when it is not one."""
    if tp is Any or tp is object:
        return value
    if tp is None or tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if _is_union(tp):
        for member in typing.get_args(tp):
            try:
                return convert(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        if any(type(value) is type(a) and value == a for a in args):
            return value
        raise _Mismatch
    if origin is not None:
        return _container(value, origin, args)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(tp, type) and issubclass(tp, PurePath):
        if isinstance(value, str | PurePath):
            return tp(value)
        raise _Mismatch
    return value  # a type YAML can't give (a Dataset, a callable): the callee decides


def _container(value: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0]) for v in value)
        if args and len(args) != len(value):
            raise _Mismatch
        return tuple(convert(v, t) for v, t in zip(value, args, strict=True)) if args else tuple(value)
    if origin in (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection):
        if not isinstance(value, list | tuple):  # a text is a Sequence too: never taken for a list of letters
            raise _Mismatch
        item = args[0] if args else Any
        return [convert(v, item) for v in value]
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, dict):
            raise _Mismatch
        k_tp, v_tp = args if len(args) == 2 else (Any, Any)
        return {convert(k, k_tp): convert(v, v_tp) for k, v in value.items()}
    return value  # another generic (Callable[...], ...): the callee decides


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a text", type(None): "null"}
_PLURAL = {bool: "true/false values", int: "integers", float: "numbers", str: "texts"}


def describe(tp: Any) -> str:
    """``tp`` in words, e.g. ``an integer or null``, ``a list of texts``, ``one of 'csv', 'kaggle'``."""
    if tp is None:
        return "null"
    if _is_union(tp):
        return " or ".join(dict.fromkeys(describe(t) for t in typing.get_args(tp)))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if args and len(set(args)) == 1:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {len(args)} values ({', '.join(describe(a) for a in args)})" if args else "a list"
    if origin in (list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        return f"a mapping of {_plural(args[0])} to {_plural(args[1])}" if len(args) == 2 else "a mapping"
    if tp in _NAMES:
        return _NAMES[tp]
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "a path"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    if tp in _PLURAL:
        return _PLURAL[tp]
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return "paths"
    return f"({describe(tp)})"
