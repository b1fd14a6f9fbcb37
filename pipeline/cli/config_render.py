"""The resolved configuration as commented YAML: what `siftline config` prints.

Every key is written, each under a one-line comment built from the config model itself (the
Field description, the type and bounds, and the default where the value differs from it), so
the model stays the one source of truth and the output documents what the README's example
leaves out. The text loads back (`siftline run FILE`, `load_config`) to the same config; only
secrets, which are masked as in the manifest, do not survive.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel, ByteSize, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

MASK = "**********"  # what `model_dump_json` writes for a SecretStr: the manifest's mask
_MISSING = object()
_UNITS = (("GiB", 1 << 30), ("GB", 10**9), ("MiB", 1 << 20), ("MB", 10**6), ("KiB", 1 << 10),
          ("KB", 10**3))
_BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="),
           (annotated_types.Lt, "lt", "<"), (annotated_types.Le, "le", "<="))


def config_yaml(config: BaseModel, defaults: BaseModel | None = None,
                header: list[str] | None = None) -> str:
    """`config` as YAML with every key, each leaf under its `# description [type; default]`
    comment; `defaults` (the same model built from nothing) supplies the default notes."""
    lines = [f"# {line}" for line in header or []]
    _section(config, defaults, 0, lines)
    return "\n".join(lines) + "\n"


def has_secrets(config: BaseModel) -> bool:
    """Whether the printed text masks a secret (it then does not load back to `config`)."""
    for name in type(config).model_fields:
        value = getattr(config, name)
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, SecretStr) or (isinstance(v, BaseModel) and has_secrets(v))
               for v in items):
            return True
    return False


def _section(section: BaseModel, defaults: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    fields = type(section).model_fields
    for name, field in fields.items():
        value = getattr(section, name)
        default = getattr(defaults, name, _MISSING) if isinstance(defaults, BaseModel) else (
            _MISSING)
        if isinstance(value, BaseModel) and type(value).model_fields:
            if doc := _one_line(field.description or _docstring(type(value))):
                lines.append(f"{pad}# {doc}")
            lines.append(f"{pad}{name}:")
            _section(value, default, indent + 2, lines)
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            lines.append(f"{pad}# {_leaf_comment(field, value, default)}")
            lines.append(f"{pad}{name}:")
            for i, item in enumerate(value):
                lines.append(f"{pad}  -")
                same = default[i] if isinstance(default, list) and i < len(default) else None
                _section(item, same, indent + 4, lines)
        else:
            lines.append(f"{pad}# {_leaf_comment(field, value, default)}")
            lines.append(f"{pad}{name}: {_scalar(_plain(value))}")


def _leaf_comment(field: FieldInfo, value: Any, default: Any) -> str:
    kind = _kind(field.annotation, field.metadata)
    notes = [kind] if kind else []
    if default is not _MISSING and not isinstance(value, SecretStr) and \
            _plain(value) != _plain(default):
        notes.append(f"default: {_scalar(_plain(default))}")
    about = _one_line(field.description)
    if about and notes:
        return f"{about} [{'; '.join(notes)}]"
    return about or "; ".join(notes)


def _kind(annotation: Any, metadata: list[Any] | None = None) -> str:
    """A short type summary: `float > 0, < 1`, `auto | jsonl`, `size (64MB, 1MiB or bytes)`."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [_kind(arg, metadata) for arg in args if arg is not type(None)]
        kind = " or ".join(k for k in kinds if k)
        return f"{kind}, or null" if type(None) in args else kind
    if origin is typing.Literal:
        return " | ".join(str(_plain(a)) for a in args)
    if origin is typing.Annotated:
        return _kind(args[0], [*args[1:], *(metadata or [])])
    bounds = ", ".join(f"{sign} {_scalar(getattr(m, attr))}" for m in metadata or []
                       for cls, attr, sign in _BOUNDS if isinstance(m, cls))
    if origin in (list, tuple, set) or annotation in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"[{', '.join(_kind(a) for a in args)}]"
        least = next((m.min_length for m in metadata or []
                      if isinstance(m, annotated_types.MinLen)), 0)
        item = _kind(args[0]) if args else "any"
        return f"list of {item}" + (f", at least {least}" if least else "")
    if origin is dict:
        return f"{{{_kind(args[0])}: {_kind(args[1])}}}" if args else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{" + ", ".join(annotation.model_fields) + "}"
    names = {bool: "true | false", int: "int", float: "float", str: "string",
             ByteSize: "size (64MB, 1MiB or bytes)", SecretStr: "secret", typing.Any: "any"}
    name = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    return f"{name} {bounds}" if bounds else name


def _plain(value: Any) -> Any:
    """A value as YAML writes it back: sizes as `64MB`, secrets masked, tuples as lists."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, ByteSize):
        return next((f"{int(value) // size}{unit}" for unit, size in _UNITS
                     if value and value % size == 0), int(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    return to_jsonable_python(value)


def _scalar(value: Any) -> str:
    """One value on one line, in YAML's flow style (a JSON string where text has line breaks)."""
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True,
                          sort_keys=False, width=1 << 30).strip()[1:-1]
    return text if "\n" not in text else json.dumps(value)


def _one_line(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _docstring(cls: type) -> str:
    """A section's own docstring (not pydantic's), its first paragraph."""
    doc = cls.__dict__.get("__doc__") or ""
    return doc.strip().split("\n\n")[0]
