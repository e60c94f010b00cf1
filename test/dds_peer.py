"""Send one message from one process to another over real DDS, and compare it field by field.

The message tests use this to prove that a message type works end to end: generated, built,
registered with the RMW, serialised, carried over DDS on loopback, and deserialised in a separate
process, which is how a node and its subscribers meet in practice. In-process tests could pass
on intra-process shortcuts; a second OS process cannot.

Run as a script, this module is one side of the exchange (the tests start both):
    python test/dds_peer.py publish MODULE:CLASS TOPIC BUILDER_MODULE:FUNCTION
    python test/dds_peer.py receive MODULE:CLASS TOPIC OUTPUT_FILE
The receiver writes the message's CDR bytes exactly as they came off the wire (a raw subscription),
so the test process deserialises what DDS delivered, not something the receiver re-encoded.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DISCOVERY_TIMEOUT_S = 20.0


def _resolve(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _qos():  # noqa: ANN202  (rclpy is imported only inside the peer processes and tests)
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    # Reliable and transient-local: a subscriber that matches late still gets the sample, so the
    # only timing that matters is discovery, which both sides wait for with a bound.
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _publish(type_ref: str, topic: str, builder_ref: str) -> int:
    import rclpy

    rclpy.init()
    node = rclpy.create_node("dds_peer_publisher")
    publisher = node.create_publisher(_resolve(type_ref), topic, _qos())
    deadline = time.monotonic() + DISCOVERY_TIMEOUT_S
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print(f"publisher: no subscriber on {topic} within {DISCOVERY_TIMEOUT_S} s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    publisher.publish(_resolve(builder_ref)())
    # Stay up so that reliable delivery can finish; the test ends this process once it has its answer.
    time.sleep(DISCOVERY_TIMEOUT_S)
    return 0


def _receive(type_ref: str, topic: str, output: str) -> int:
    import rclpy

    rclpy.init()
    node = rclpy.create_node("dds_peer_receiver")
    received: list[bytes] = []
    node.create_subscription(_resolve(type_ref), topic, received.append, _qos(), raw=True)
    deadline = time.monotonic() + 2 * DISCOVERY_TIMEOUT_S
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not received:
        print(f"receiver: nothing on {topic}", file=sys.stderr)
        return 1
    Path(output).write_bytes(received[0])
    return 0


def exchange(type_ref: str, topic: str, builder_ref: str, workdir: Path) -> bytes:
    """Publish `builder_ref()` from one process, receive it in another; return the raw CDR bytes.

    `builder_ref` ("module:function") is imported by the publisher process, with this directory on
    its path. Raises AssertionError with both peers' output when the message does not arrive.
    """
    output = workdir / "received.cdr"
    script = str(Path(__file__).resolve())
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    peers = [
        subprocess.Popen(
            [sys.executable, script, "receive", type_ref, topic, str(output)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        subprocess.Popen(
            [sys.executable, script, "publish", type_ref, topic, builder_ref],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    ]
    try:
        receiver_status = peers[0].wait(timeout=3 * DISCOVERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        receiver_status = None
    finally:
        for peer in peers:
            if peer.poll() is None:
                peer.kill()
    logs = "\n".join(
        f"--- {name} (exit {peer.wait()}):\n{peer.stdout.read()}"
        for name, peer in zip(("receiver", "publisher"), peers, strict=True)
    )
    assert receiver_status == 0 and output.exists(), f"no {type_ref} arrived on {topic}\n{logs}"
    return output.read_bytes()


def field_values(message: Any, path: str = "msg") -> dict[str, Any]:
    """Every leaf field of a ROS message, keyed by its path ("msg.skeletons[1].root_position.z").

    Nested messages and sequences of messages are walked; arrays of numbers become plain lists so
    that float32 arrays (array.array / numpy) compare by value.
    """
    leaves: dict[str, Any] = {}
    for name in message.get_fields_and_field_types():
        value = getattr(message, name)
        key = f"{path}.{name}"
        if hasattr(value, "get_fields_and_field_types"):
            leaves.update(field_values(value, key))
        elif isinstance(value, (list, tuple)) and value and hasattr(value[0], "get_fields_and_field_types"):
            for index, item in enumerate(value):
                leaves.update(field_values(item, f"{key}[{index}]"))
        elif isinstance(value, (str, bytes, int, float, bool)):
            leaves[key] = value
        else:  # array.array, numpy arrays, lists of primitives
            leaves[key] = [item.item() if hasattr(item, "item") else item for item in value]
    return leaves


def unset_fields(message: Any) -> list[str]:
    """Paths of leaf fields left at zero, empty or False: a test message must fill every field,
    so that a field added to the .msg later is not silently left out of the comparison."""
    return [
        path for path, value in field_values(message).items() if not (any(value) if isinstance(value, list) else value)
    ]


def main(argv: list[str]) -> int:
    roles: dict[str, Callable[[str, str, str], int]] = {"publish": _publish, "receive": _receive}
    if len(argv) != 4 or argv[0] not in roles:
        print(__doc__, file=sys.stderr)
        return 2
    return roles[argv[0]](*argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
