"""Signal handling for the package's processes (pose3d_node, demo_publisher): one Ctrl-C or
SIGTERM, or several, end in one clean shutdown with the process's own exit status."""

from __future__ import annotations

import signal
from typing import Any


def quiet_repeated_signals() -> None:
    """SIGINT and SIGTERM do nothing more at Python level than rclpy's own handlers already do.

    rclpy's handlers shut the context down (which ends the spin) and then call the previous
    Python handler, which for SIGINT raises KeyboardInterrupt. In a terminal under ``ros2 launch``
    Ctrl-C arrives twice (from the terminal and forwarded by launch), and the second
    KeyboardInterrupt lands in the middle of the cleanup with a traceback. Installed before
    ``rclpy.init``, these no-op handlers are what rclpy chains to, so any number of signals end
    in one clean shutdown and exit status 0.
    """

    def ignore(signum: int, frame: Any) -> None:
        pass

    signal.signal(signal.SIGINT, ignore)
    signal.signal(signal.SIGTERM, ignore)


def ignore_signals_while_exiting() -> None:
    """After the cleanup: ignore SIGINT and SIGTERM for good. While the interpreter finalizes,
    Python puts its own handlers back to the default (terminate), so a late Ctrl-C (launch
    forwarding the terminal's) would end the process with -SIGINT instead of its exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
