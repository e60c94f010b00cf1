"""The ``main()`` of a lifecycle node executable: start, optionally drive to active, spin, exit cleanly.

pose3d_fusion uses it; pose3d_node's ``main`` is the same sequence (and can call this with
``autostart=lambda node: node.ros.autostart``). Signals: see ``signals.quiet_repeated_signals``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.logging import get_logger
from rclpy.task import Future

from ros2_ctxpose.ros.signals import ignore_signals_while_exiting, quiet_repeated_signals

N = TypeVar("N", bound=LifecycleNode)


def run_lifecycle_node(
    make: Callable[[], N],
    name: str,
    autostart: Callable[[N], bool],
    args: list[str] | None = None,
    finished: Callable[[N], Future] | None = None,
) -> int:
    """Create the node with ``make``, configure and activate it when ``autostart(node)``, spin until
    shut down (a signal, or ``finished(node)`` done: e.g. after the lifecycle shutdown
    transition). Exit status 1 (with one fatal line, no traceback) when it cannot start."""
    quiet_repeated_signals()
    rclpy.init(args=args)
    node = None
    status = 0
    stage = "cannot start"
    try:
        node = make()
        if autostart(node):
            for transition_name, transition in (
                ("configure", node.trigger_configure),
                ("activate", node.trigger_activate),
            ):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    if rclpy.ok():
                        get_logger(name).fatal(f"cannot start: {transition_name} failed (see above)")
                        status = 1
                    return status
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        stage = "stopped"
        if finished is None:
            executor.spin()
        else:
            executor.spin_until_future_complete(finished(node))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # noqa: BLE001 - bad parameters or a broken install: say so, no traceback wall
        # A signal shuts the context down under the executor at any point: a shutdown, not a failure.
        if rclpy.ok():
            get_logger(name).fatal(f"{stage}: {type(exc).__name__}: {exc}")
            status = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_signals_while_exiting()
    return status
