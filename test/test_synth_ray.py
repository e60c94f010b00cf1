"""The shard scheduling of ``ctxpose synth`` (``training.synthetic.schedulers``) on real engines: a
real local Ray (2 CPUs, started here), a real spawned process pool and this process, all running
the same light, seeded shard maker. Ray's tests skip with the reason when Ray (the ``[ray]``
extra) is not installed. The full engine on Ray is ``test_synth_ray_engine.py`` (slow)."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ros2_ctxpose.training.synthetic import schedulers


@dataclass(frozen=True)
class SeededMaker:
    """A light stand-in for ``worker.Worker``: shard ``i`` holds random joints drawn from
    ``(seed, i)``, written into a temporary folder and renamed into place, as real shards are."""

    seed: int

    def shard(self, out: Path, index: int) -> dict:
        rng = np.random.default_rng([self.seed, index])
        people = int(rng.integers(1, 6))
        final = out / f"shard_{index:06d}"
        tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
        tmp.mkdir(parents=True)
        np.save(tmp / "joints.npy", rng.normal(size=(people, 17, 3)).astype(np.float32))
        os.replace(tmp, final)
        return {"index": index, "people": people, "pid": os.getpid()}


def _broken_maker() -> SeededMaker:
    raise FileNotFoundError("no photographs")


def _make(engine: schedulers.Engine, out: Path, people: int) -> list[dict]:
    """Shards 0, 1, ... until ``people`` are made, as ``generate`` asks for them."""
    made: list[dict] = []
    indices = iter(range(10_000))
    schedulers.make_shards(
        engine, out, lambda: next(indices), lambda _in_flight: sum(m["people"] for m in made) < people, made.append
    )
    return made


def _files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray with 2 CPUs for this module; ``ray_actors`` uses it and leaves it running."""
    ray = pytest.importorskip("ray", reason=f"Ray is not installed (the [ray] extra: {schedulers.RAY_REQUIREMENT})")
    # Workers import this module by name: they get this process's sys.path, as a cluster's nodes
    # get the installed package.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=schedulers.LOCAL_OBJECT_STORE_BYTES,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}},
    )
    yield ray
    ray.shutdown()


def test_ray_actors_write_the_same_shards_as_the_pool_and_this_process(ray_local, tmp_path) -> None:
    factory = functools.partial(SeededMaker, 5)
    for name in ("ray", "pool", "here"):
        (tmp_path / name).mkdir()
    with schedulers.ray_actors(factory, "auto", None, tmp_path / "ray") as engine:
        assert engine.workers == 2  # one actor per CPU of the cluster
        made_ray = _make(engine, tmp_path / "ray", 40)
    with schedulers.process_pool(factory, 2) as engine:
        made_pool = _make(engine, tmp_path / "pool", 40)
    with schedulers.in_process(factory) as engine:
        made_here = _make(engine, tmp_path / "here", 40)
    ray_pids, pool_pids = ({m["pid"] for m in made} for made in (made_ray, made_pool))
    assert len(ray_pids) == 2 and os.getpid() not in ray_pids  # both actors worked (each is given shards)
    assert 1 <= len(pool_pids) <= 2 and os.getpid() not in pool_pids  # the first process up may take them all
    assert {m["pid"] for m in made_here} == {os.getpid()}
    assert sum(m["people"] for m in made_here[:-1]) < 40  # one at a time: not a shard more than asked for
    assert sum(m["people"] for m in made_ray) >= 40
    # Shards are independent: whatever each engine made in whatever order, shared indices are identical.
    ray_files, pool_files, here_files = (_files(tmp_path / name) for name in ("ray", "pool", "here"))
    shared = set(ray_files) & set(pool_files) & set(here_files)
    assert len(shared) >= 8
    for name in shared:
        assert ray_files[name] == pool_files[name] == here_files[name], name
    assert not list(tmp_path.rglob("*.tmp*"))


def test_a_maker_that_cannot_start_fails_its_shard_on_ray(ray_local, tmp_path) -> None:
    with (
        pytest.raises(FileNotFoundError, match="no photographs"),
        schedulers.ray_actors(_broken_maker, "auto", 1, tmp_path) as engine,
    ):
        _make(engine, tmp_path, 3)


def test_a_maker_that_cannot_start_fails_once_then_every_shard() -> None:
    """Not a pool that restarts the failing process forever (seen with a stale background cache)."""
    calls = []

    def broken() -> SeededMaker:
        calls.append(1)
        return _broken_maker()

    host = schedulers.ShardHost(broken)
    for _ in range(2):
        with pytest.raises(FileNotFoundError, match="no photographs"):
            host.shard("unused", 0)
    assert len(calls) == 1


def test_an_output_folder_a_node_does_not_share_is_named(tmp_path) -> None:
    host = schedulers.ShardHost(functools.partial(SeededMaker, 0))
    (tmp_path / "probe").write_text("x")
    assert host.check_output(str(tmp_path), "probe") == ""
    assert "not on a shared filesystem" in host.check_output(str(tmp_path / "elsewhere"), "probe")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "probe").write_text("x")  # the probe is there, but what the host writes cannot be
    (tmp_path / "sub" / f"probe.{os.uname().nodename}.{os.getpid()}").mkdir()
    assert "cannot write" in host.check_output(str(tmp_path / "sub"), "probe")


def test_without_ray_the_error_is_one_line_naming_the_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray imports
    with pytest.raises(schedulers.EngineError) as error:
        schedulers.import_ray()
    assert "\n" not in str(error.value) and f"pip install '{schedulers.RAY_REQUIREMENT}'" in str(error.value)
