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


@cache
def _message_class(type_name: str) -> type:
    package, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _element(field_type: str) -> str:
    """``sequence<geometry_msgs/Point>``, ``float[4]``, ``geometry_msgs/Point`` -> the element type."""
    match = _ELEMENT.match(re.sub(r"<=\d+", "", field_type))
    if match is None:
        raise ValueError(f"unsupported field type {field_type!r}")
    return match.group(1)


def to_message(msg_type: type, content: Mapping[str, Any]) -> Any:
    """An instance of ``msg_type`` with the fields of ``content`` (nested dicts and lists of dicts
    for message fields); a KeyError names a field the message does not have."""
    fields = msg_type.get_fields_and_field_types()
    msg = msg_type()
    for name, value in content.items():
        if name not in fields:
            raise KeyError(f"{msg_type.__name__} has no field {name!r}")
        element = _element(fields[name])
        if "/" in element:
            nested = _message_class(element)
            value = to_message(nested, value) if isinstance(value, Mapping) else [to_message(nested, v) for v in value]
        elif element in _FLOAT_DTYPES and isinstance(value, list):
            value = np.asarray(value, dtype=_FLOAT_DTYPES[element])
        setattr(msg, name, value)
    return msg


def header_content(header: Any) -> dict[str, Any]:
    """A std_msgs/Header as content."""
    return {"stamp": {"sec": header.stamp.sec, "nanosec": header.stamp.nanosec}, "frame_id": header.frame_id}


def nanoseconds(duration: Any) -> int:
    """A builtin_interfaces/Duration (or Time) in nanoseconds."""
    return int(duration.sec) * 1_000_000_000 + int(duration.nanosec)
