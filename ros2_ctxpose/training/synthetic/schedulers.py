"""Where shards are made: in this process, in a local process pool (the default) or on Ray actors
(a local Ray or a cluster), and the one loop that keeps any of them busy (``make_shards``).

Engine-agnostic: an :class:`Engine` turns a shard index into a ``concurrent.futures.Future`` of the
shard's meta, and ``make_shards`` only waits on futures. What a shard is belongs to the maker the
engine's hosts build (``worker.Worker`` for ``ctxpose synth``): any picklable factory of an object
with ``shard(out, index) -> meta`` works, which is how the tests run real Ray with a light maker.
Shard ``i`` depends only on the maker's seed and ``i``, so every engine writes the same shard,
byte for byte (the renderer draws the same pixels on every run: ``render._Node``).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

#: The pinned Ray of the ``[ray]`` extra (setup.cfg, tools/requirements-synth.txt).
RAY_REQUIREMENT = "ray==2.60.0"
#: Ray's object store holds only the shards' small meta dicts: a local Ray needs little of it.
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20
#: A Ray actor lost with its node is started again (elsewhere) and its shard retried: shards are
#: deterministic and written atomically, so a retried shard is the same shard.
RAY_RETRIES = 3


class ShardMaker(Protocol):
    def shard(self, out: Path, index: int) -> dict: ...


class EngineError(RuntimeError):
    """The engine cannot run (Ray missing, unreachable, or an --out some node cannot write)."""


class ShardHost:
    """One worker process's maker, built at its first shard and kept (loading assets, renderer and
    detector once is what makes a worker fast). A failure to build is kept and raised by every
    shard, the build not retried: an exception from a pool initializer makes multiprocessing start
    the process again, forever, and one from a Ray actor's constructor hides its cause."""

    def __init__(self, factory: Callable[[], ShardMaker]) -> None:
        self._factory = factory
        self._maker: ShardMaker | None = None
        self._error: Exception | None = None

    def shard(self, out: str, index: int) -> dict:
        if self._error is not None:
            raise self._error
        if self._maker is None:
            try:
                self._maker = self._factory()
            except Exception as e:
                self._error = e
                raise
        return self._maker.shard(Path(out), index)

    def check_output(self, out: str, probe: str) -> str:
        """ "" when this process sees the driver's ``probe`` file in ``out`` and can write there;
        otherwise why not, naming this host."""
        where = f"{socket.gethostname()} (pid {os.getpid()})"
        if not (Path(out) / probe).is_file():
            return f"{where} does not see {out}/{probe}, which the driver wrote: --out is not on a shared filesystem"
        mine = Path(out) / f"{probe}.{socket.gethostname()}.{os.getpid()}"
        try:
            mine.write_text("ok")
            mine.unlink()
        except OSError as e:
            return f"{where} cannot write to {out}: {e}"
        return ""


@dataclass(frozen=True)
class Engine:
    """Runs shards: ``submit(out, index)`` returns the future of the shard's meta; ``slots`` shards
    in flight keep every worker busy (by default two per worker: one running, one queued)."""

    name: str
    workers: int
    submit: Callable[[Path, int], Future]
    per_worker: int = 2

    @property
    def slots(self) -> int:
        return self.per_worker * self.workers


def make_shards(
    engine: Engine,
    out: Path,
    next_index: Callable[[], int],
    wanted: Callable[[int], bool],
    finished: Callable[[dict], None],
) -> None:
    """Submit shard ``next_index()`` while ``wanted(in_flight)`` and a slot is free; hand each
    finished shard's meta to ``finished`` in completion order; return once none is in flight. A
    shard's exception is raised here."""
    pending: set[Future] = set()
    while True:
        while len(pending) < engine.slots and wanted(len(pending)):
            pending.add(engine.submit(out, next_index()))
        if not pending:
            return
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            finished(future.result())


@contextmanager
def in_process(factory: Callable[[], ShardMaker]) -> Iterator[Engine]:
    """Shards made one at a time by this process (``--workers 0``: debugging, profiling)."""
    host = ShardHost(factory)

    def submit(out: Path, index: int) -> Future:
        future: Future = Future()
        try:
            future.set_result(host.shard(str(out), index))
        except Exception as e:  # noqa: BLE001 (handed to the caller through the future)
            future.set_exception(e)
        return future

    yield Engine("this process", 1, submit, per_worker=1)  # submit makes the shard: nothing to queue


_HOST: ShardHost | None = None


def _start_host(factory: Callable[[], ShardMaker]) -> None:
    global _HOST
    _HOST = ShardHost(factory)


def _run_shard(out: str, index: int) -> dict:
    assert _HOST is not None, "the pool's initializer did not run"
    return _HOST.shard(out, index)


@contextmanager
def process_pool(factory: Callable[[], ShardMaker], workers: int) -> Iterator[Engine]:
    """``workers`` spawned processes on this machine, each with its own ``ShardHost``. A
    ``multiprocessing`` pool rather than ``ProcessPoolExecutor``: leaving it terminates the
    processes at once (an error or Ctrl-C does not wait for the shards in progress)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_host, initargs=(factory,)) as pool:

        def submit(out: Path, index: int) -> Future:
            future: Future = Future()
            pool.apply_async(
                _run_shard, (str(out), index), callback=future.set_result, error_callback=future.set_exception
            )
            return future

        yield Engine(f"{workers} processes", workers, submit)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise EngineError(f"--ray needs Ray, which is not installed ({e}): pip install '{RAY_REQUIREMENT}'") from e
    return ray


def connect_ray(ray: Any, address: str, workers: int | None) -> None:
    """``auto``: this machine's running Ray, or a new local one with ``workers`` CPUs (default:
    all); anything else: that cluster (``ray://head:10001`` or ``head:6379``)."""
    try:
        if address != "auto":
            ray.init(address=address)
            return
        try:
            ray.init(address="auto")
        except ConnectionError:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise EngineError(f"cannot reach Ray at {address}: {e}") from e


def check_shared_output(ray: Any, hosts: list, out: Path) -> None:
    """Raise :class:`EngineError` unless every host sees this process's files in ``out`` and can
    write there: the shards must land where this process (resume, summary) reads them."""
    probe = f".ray_probe_{uuid.uuid4().hex}"
    path = out / probe
    path.write_text("written by the ctxpose synth driver")
    try:
        problems = sorted({p for p in ray.get([h.check_output.remote(str(out), probe) for h in hosts]) if p})
    finally:
        path.unlink()
    if problems:
        raise EngineError("; ".join(problems))


@contextmanager
def ray_actors(factory: Callable[[], ShardMaker], address: str, workers: int | None, out: Path) -> Iterator[Engine]:
    """One actor per worker (default: one per CPU of the cluster), each holding a ``ShardHost``.
    Actors, not tasks: a task would load the assets, renderer and detector for every shard (or
    depend on Ray reusing its process), while an actor loads them once, as a pool process does."""
    ray = import_ray()
    owned = not ray.is_initialized()  # a caller that started Ray itself keeps it
    if owned:
        connect_ray(ray, address, workers)
    hosts: list = []
    try:
        count = workers or int(ray.cluster_resources().get("CPU", 0))
        if count < 1:
            raise EngineError(f"the Ray cluster at {address} has no CPU to run shards on")
        actor = ray.remote(num_cpus=1, max_restarts=RAY_RETRIES, max_task_retries=RAY_RETRIES)(ShardHost)
        hosts = [actor.remote(factory) for _ in range(count)]
        check_shared_output(ray, hosts, out)
        in_flight = [0] * count
        lock = threading.Lock()  # futures complete on Ray's threads

        def submit(out: Path, index: int) -> Future:
            with lock:
                i = in_flight.index(min(in_flight))  # the least busy actor
                in_flight[i] += 1
            future = hosts[i].shard.remote(str(out), index).future()

            def release(_: Future) -> None:
                with lock:
                    in_flight[i] -= 1

            future.add_done_callback(release)
            return future

        yield Engine(f"Ray ({count} actors)", count, submit)
    finally:
        for host in hosts:
            ray.kill(host)
        if owned:
            ray.shutdown()
