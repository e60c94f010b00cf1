"""``ctxpose synth --ray auto`` end to end (slow): the real engine on a real local Ray (2 CPUs)
writes the shards the process pool writes for the same seed, and resumes a set after a lost shard.

"The same" is byte-identical, images and detector outputs included (the renderer draws the same
pixels on every run: ``render._Node``).

Needs Ray (the ``[ray]`` extra), the ``[synth]`` extras, the fetched background photographs
(``ctxpose synth --fetch-backgrounds``) and ../shared's Human3.6M mocap; skipped with the reason
otherwise. The first run builds a small S11 pose library into the user's cache (kept)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ros2_ctxpose.core.paths import shared_data_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine_ready(synth_extras) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    from ros2_ctxpose.training.synthetic.backgrounds import BackgroundsMissing, load_backgrounds

    try:
        load_backgrounds()
    except BackgroundsMissing as e:
        pytest.skip(str(e))
    if not (shared_data_dir() / "data" / "h36m" / "poses_world17_mm.npz").is_file():
        pytest.skip(f"Human3.6M mocap not found under {shared_data_dir()}")


def _synth(out: Path, *extra: str, people: int = 4) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ros2_ctxpose.cli.main", "synth", "--out", str(out), "--people", str(people)]
    command += ["--images-per-shard", "2", "--workers", "2", "--subjects", "S11", "--stride", "100", "--seed", "3"]
    result = subprocess.run([*command, *extra], capture_output=True, text=True, check=False, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.glob("shard_*/**/*")) if f.is_file()}


def _assert_same_shards(got: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """Every shard both runs made is the same, file for file. How many shards a run makes
    depends on timing (shards in flight when enough people are stored are finished), so one run
    may hold a shard more; both hold the first two (each has two workers)."""

    def shards(files: dict[str, bytes]) -> set[str]:
        return {name.split("/")[0] for name in files}

    common = shards(got) & shards(expected)
    assert {"shard_000000", "shard_000001"} <= common
    got = {k: v for k, v in got.items() if k.split("/")[0] in common}
    expected = {k: v for k, v in expected.items() if k.split("/")[0] in common}
    assert set(got) == set(expected)
    assert [name for name in expected if got[name] != expected[name]] == []


def test_ray_writes_the_pools_shards_and_resumes(engine_ready, tmp_path) -> None:
    ray_run = _synth(tmp_path / "ray", "--ray", "auto")
    _synth(tmp_path / "pool")
    assert "Ray (2 actors)" in ray_run.stdout  # the summary names the engine that made the shards
    ray_files, pool_files = _files(tmp_path / "ray"), _files(tmp_path / "pool")
    assert any(name.endswith("meta.json") for name in ray_files)
    _assert_same_shards(ray_files, pool_files)
    # A lost shard is made again, the same, and the others are not rewritten: the set's shard with
    # most people goes, and the run asks for the whole set's people again.
    people = {p: json.loads((p / "meta.json").read_text())["people"] for p in (tmp_path / "ray").glob("shard_[0-9]*")}
    lost = max(people, key=people.__getitem__)
    kept = {p: p.stat().st_mtime_ns for p in people if p != lost}
    shutil.rmtree(lost)
    _synth(tmp_path / "ray", "--ray", "auto", people=sum(people.values()))
    assert lost.is_dir()
    _assert_same_shards(_files(tmp_path / "ray"), pool_files)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
