"""Message content (``output.content``'s nested dicts) -> rclpy message objects, and back for
the few fields the node hands in (header, duration).

Generic over message types: each field's type comes from the class's own
``get_fields_and_field_types()``. rosidl_runtime_py's ``set_message_fields`` does the same but is
not in the PyPI ROS wheels this project also runs on, hence these few lines. Float arrays are
set as numpy arrays (rclpy then checks their dtype once, not every value).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

import numpy as np

#: rosidl type names of float fields -> numpy dtype.
_FLOAT_DTYPES: Final[dict[str, type]] = {"float": np.float32, "double": np.float64}
_ELEMENT = re.compile(r"^(?:sequence<)?([\w/]+?)(?:, *\d+)?>?(?:\[\d*\])?$")


def _element(field_type: str) -> str:
    """``sequence<geometry_msgs/Point>``, ``float[4]``, ``geometry_msgs/Point`` -> the element type."""
    match = _ELEMENT.match(re.sub(r"<=\d+", "", field_type))
    if match is None:
        raise ValueError(f"unsupported field type {field_type!r}")
    return match.group(1)


@cache
def _fields(msg_type: type) -> dict[str, tuple[type | None, type | None]]:
    """Per field of a message class: (its message class or None, its float dtype or None);
    worked out once per class (the node converts every frame)."""
    plan: dict[str, tuple[type | None, type | None]] = {}
    for name, field_type in msg_type.get_fields_and_field_types().items():
        element = _element(field_type)
        if "/" in element:
            package, type_name = element.split("/")
            plan[name] = (getattr(importlib.import_module(f"{package}.msg"), type_name), None)
        else:
            plan[name] = (None, _FLOAT_DTYPES.get(element))
    return plan


def to_message(msg_type: type, content: Mapping[str, Any]) -> Any:
    """An instance of ``msg_type`` with the fields of ``content`` (nested dicts and lists of dicts
    for message fields); a KeyError names a field the message does not have."""
    fields = _fields(msg_type)
    msg = msg_type()
    for name, value in content.items():
        if name not in fields:
            raise KeyError(f"{msg_type.__name__} has no field {name!r}")
        nested, dtype = fields[name]
        if nested is not None:
            value = to_message(nested, value) if isinstance(value, Mapping) else [to_message(nested, v) for v in value]
        elif dtype is not None and isinstance(value, list):
            value = np.asarray(value, dtype=dtype)
        setattr(msg, name, value)
    return msg


def header_content(header: Any) -> dict[str, Any]:
    """A std_msgs/Header as content."""
    return {"stamp": {"sec": header.stamp.sec, "nanosec": header.stamp.nanosec}, "frame_id": header.frame_id}


def nanoseconds(duration: Any) -> int:
    """A builtin_interfaces/Duration (or Time) in nanoseconds."""
    return int(duration.sec) * 1_000_000_000 + int(duration.nanosec)
