"""A background reader: the next frames read and decoded on a thread while this one is processed."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, produced by a reader thread up to ``depth`` ahead of the consumer.

    Reading and decoding the next frame (cv2 releases the GIL) then overlaps the processing of
    this one. An exception in the reader is raised here, at the item it failed on; a consumer that
    stops early (``close()``, a broken pipe) stops the reader too.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    break
            else:
                put((False, None))
        except BaseException as error:  # handed to the consumer, raised there
            put((False, error))
        finally:
            close = getattr(items, "close", None)  # a generator's own clean-up (e.g. a video capture)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="ctxpose-reader", daemon=True)
    reader.start()
    try:
        while True:
            is_item, value = slots.get()
            if is_item:
                yield value  # type: ignore[misc]
            elif value is None:
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        reader.join()
