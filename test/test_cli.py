"""The ``ctxpose`` CLI: dispatch, flags derived from ``PipelineConfig``, cameras, ``infer`` on
real/corrupt/empty files and a video, ``eval``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ros2_ctxpose.cli import main as cli_main
from ros2_ctxpose.cli.config_args import config_from_args, flag
from ros2_ctxpose.cli.infer import CameraSource, load_camera_info
from ros2_ctxpose.core.annotations import read_annotations, write_subset
from ros2_ctxpose.core.config import ConfigError, PipelineConfig
from ros2_ctxpose.core.media.inputs import iter_frames
from ros2_ctxpose.core.tracking import box_iou

#: The reference backend on the CPU, whatever else is installed (``auto`` would pick OpenVINO).
TORCH_CPU = ["--backend", "torch", "--device", "cpu"]


@pytest.fixture(scope="module")
def bus_jpg(shared_data) -> Path:
    return shared_data("data/images/coco/bus.jpg")


def _parse(*argv: str) -> argparse.Namespace:
    return cli_main.build_parser().parse_args(list(argv))


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "infer" in out and "eval" in out


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from ros2_ctxpose.cli import main; main.build_parser(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_optional_module_is_left_out_but_broken_one_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subparsers = argparse.ArgumentParser().add_subparsers()
    cli_main._register_optional(subparsers, "ros2_ctxpose.cli.no_such_module")
    (tmp_path / "ctxpose_broken_cli.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        cli_main._register_optional(subparsers, "ctxpose_broken_cli")
    sys.modules.pop("ctxpose_broken_cli", None)


def test_every_setting_is_a_flag_of_infer_and_eval() -> None:
    for command in ("infer", "eval"):
        args = _parse(command, "x")
        assert config_from_args(args) == PipelineConfig()  # the flags' defaults are the config's
        for f in dataclasses.fields(PipelineConfig):
            assert getattr(args, f.name) == f.default, (command, f.name)
    assert flag("person_threshold") == "--person-threshold"


def test_flags_set_the_config() -> None:
    args = _parse(
        "infer",
        "x",
        *TORCH_CPU,
        "--max-people",
        "3",
        "--imgsz",
        "320",
        "--person-threshold",
        "0.4",
        "--track-max-age-s",
        "2.5",
        "--detector-weights",
        "/w/yolo.pt",
    )
    assert config_from_args(args) == PipelineConfig(
        backend="torch",
        device="cpu",
        max_people=3,
        imgsz=320,
        person_threshold=0.4,
        track_max_age_s=2.5,
        detector_weights="/w/yolo.pt",
    )
    assert config_from_args(args, max_people=5).max_people == 5


def test_bad_flags_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parse("infer", "x", "--backend", "tensorrt")  # not a choice: argparse says so
    assert exc.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse("infer", "x", "--max-people", "three")
    with pytest.raises(ConfigError, match="imgsz must be a multiple of 32, got 500"):
        config_from_args(_parse("infer", "x", "--imgsz", "500"))


def test_invalid_settings_stop_infer_before_any_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["infer", str(tmp_path), "--imgsz", "500", "--max-people", "0"]) == 2
    err = capsys.readouterr().err
    assert "imgsz must be a multiple of 32, got 500" in err and "max_people must be in [1, 100], got 0" in err


def _camera_info(
    path: Path, width: int = 640, height: int = 480, fx: float = 500, dist: str = "[0.1, -0.2, 0.001, 0.002, 0.0]"
) -> Path:
    path.write_text(
        f"image_width: {width}\nimage_height: {height}\ncamera_name: test\n"
        f"camera_matrix: {{rows: 3, cols: 3, data: [{fx}, 0, 320, 0, 501, 240, 0, 0, 1]}}\n"
        "distortion_model: plumb_bob\n"
        f"distortion_coefficients: {{rows: 1, cols: 5, data: {dist}}}\n"
    )
    return path


def test_camera_info_yaml(tmp_path: Path) -> None:
    calibration = load_camera_info(_camera_info(tmp_path / "cam.yaml"))
    assert calibration.size == (640, 480) and calibration.model == "plumb_bob"
    cam = calibration.camera(640, 480)
    assert (cam.width, cam.height) == (640, 480) and cam.K[1, 1] == 501 and not cam.assumed and not cam.notes
    np.testing.assert_allclose(cam.dist, [0.1, -0.2, 0.001, 0.002, 0.0])
    (tmp_path / "bad.yaml").write_text("camera_matrix: {data: [1, 2]}\n")
    with pytest.raises(ValueError, match="camera_info"):
        load_camera_info(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="not a camera_info YAML"):
        load_camera_info(tmp_path / "list.yaml")


def test_unusable_calibration_is_refused_when_read(tmp_path: Path) -> None:
    """An absurd calibration is refused before any image is read, naming the file and the problem."""
    with pytest.raises(ValueError, match=r"huge.yaml: .*focal lengths .* not a real camera"):
        load_camera_info(_camera_info(tmp_path / "huge.yaml", fx=5e7))
    with pytest.raises(ValueError, match=r"lens.yaml: .*not a real lens"):
        load_camera_info(_camera_info(tmp_path / "lens.yaml", dist="[1e9, 0, 0, 0, 0]"))


def test_camera_info_of_another_size_is_scaled_and_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _camera_info(tmp_path / "cam.yaml", dist="[0.1, -0.2, 0.001]")
    cameras = CameraSource(_parse("infer", "x", "--camera-info", str(path)))
    for _ in range(2):
        cam = cameras(320, 240)
        np.testing.assert_allclose(cam.K, [[250, 0, 160], [0, 250.5, 120], [0, 0, 1]])
        np.testing.assert_allclose(cam.dist, [0.1, -0.2, 0.001, 0.0])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2  # one line per note, not per image
    assert "calibrated for 640x480 scaled to the 320x240 image" in err[1] and "zero-padded to 4" in err[0]
    assert not [note for note in cameras(640, 480).notes if "scaled" in note]  # its own size: as calibrated


def test_partial_intrinsics_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["infer", str(tmp_path), "--fx", "500"]) == 2
    assert "--fx --fy --cx --cy" in capsys.readouterr().err


def test_inputs_that_cannot_be_read_become_error_frames(tmp_path: Path) -> None:
    """No weights needed: what ``infer`` reads, and how it reports what it cannot."""
    good = np.full((48, 64, 3), 200, np.uint8)
    _, jpeg = cv2.imencode(".jpg", good)
    (tmp_path / "a_good.jpg").write_bytes(jpeg.tobytes())
    (tmp_path / "b_truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    (tmp_path / "c_empty.png").write_bytes(b"")
    (tmp_path / "d_not_an_image.jpg").write_text("hello")
    (tmp_path / "e_broken.mp4").write_bytes(b"\0" * 64)
    (tmp_path / "notes.txt").write_text("ignored: not an image or video")
    frames = list(iter_frames([tmp_path, tmp_path / "missing.jpg"]))
    names = [Path(f.name).name for f in frames]
    assert names == [
        "a_good.jpg",
        "b_truncated.jpg",
        "c_empty.png",
        "d_not_an_image.jpg",
        "e_broken.mp4",
        "missing.jpg",
    ]
    assert frames[0].error is None and frames[0].image.shape == (48, 64, 3)
    assert all(f.error and f.image is None for f in frames[1:])
    assert frames[2].error == "empty file" and frames[5].error == "no such file"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_infer_real_corrupt_and_empty_images(
    tmp_path: Path, weights_available: None, bus_jpg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(bus_jpg.read_bytes()[:20000])
    (tmp_path / "empty.jpg").write_bytes(b"")
    out, overlay = tmp_path / "out.jsonl", tmp_path / "overlay"
    rc = cli_main.main(
        [
            "infer",
            str(bus_jpg),
            str(truncated),
            str(tmp_path / "empty.jpg"),
            *TORCH_CPU,
            "--out",
            str(out),
            "--overlay",
            str(overlay),
        ]
    )
    assert rc == 1  # some inputs failed, the run still finished
    err = capsys.readouterr().err
    assert "assuming a 60 deg horizontal field of view" in err and "truncated.jpg" in err
    good, bad, empty = _lines(out)
    assert good["file"] == str(bus_jpg) and (good["width"], good["height"]) == (810, 1080)
    assert len(good["people"]) == 4 and good["latency_ms"] > 0
    for i, person in enumerate(good["people"]):
        assert person["id"] == i and person["root_source"] == "scale_unknown"
        assert np.array(person["joints_2d_px"]).shape == (17, 3)
        joints = np.array(person["joints_3d_cam_m"])
        assert joints.shape == (17, 3) and np.isfinite(joints).all()
        assert person["root_cam_m"] == person["joints_3d_cam_m"][0]
    for line in (bad, empty):
        assert line["error"] and line["people"] == []
    assert "empty" in empty["error"]
    assert cv2.imread(str(overlay / "bus.jpg")).shape == (1080, 810, 3)


@pytest.mark.slow
def test_infer_video_keeps_ids(tmp_path: Path, weights_available: None, bus: np.ndarray) -> None:
    image = cv2.resize(bus, (404, 540))
    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (404, 540))
    for shift in (0, 4, 8):  # everyone moves 4 px right per frame
        writer.write(np.roll(image, shift, axis=1))
    writer.release()
    out = tmp_path / "out.jsonl"
    assert (
        cli_main.main(
            [
                "infer",
                str(video),
                "--fx",
                "400",
                "--fy",
                "400",
                "--cx",
                "202",
                "--cy",
                "270",
                *TORCH_CPU,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = _lines(out)
    assert [line["file"] for line in lines] == [f"{video}#00000{i}" for i in range(3)]
    assert min(p["id"] for p in lines[0]["people"]) == 1  # tracker ids, not per-image indices
    for prev, cur in zip(lines, lines[1:]):
        ids = [p["id"] for p in cur["people"]]
        assert len(set(ids)) == len(ids)
        prev_boxes = np.array([p["bbox_xyxy"] for p in prev["people"]])
        for person in cur["people"]:
            iou = box_iou(np.array([person["bbox_xyxy"]]), prev_boxes)[0]
            if iou.max() > 0.7:  # the same person, moved by 4 px
                assert person["id"] == prev["people"][int(iou.argmax())]["id"]
    assert {p["root_source"] for line in lines for p in line["people"]} == {"intrinsics"}


@pytest.mark.slow
def test_eval_on_annotated_images(
    tmp_path: Path, weights_available: None, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One image per dataset (plus one without 3D) keeps this fast; the numbers must be finite."""
    picked, seen = [], set()
    for index, entry in enumerate(read_annotations(images / "annotations.json")):
        layout = entry.truth and entry.truth.joint_set
        if layout not in seen:
            seen.add(layout)
            picked.append(index)
    subset = tmp_path / "annotations.json"
    write_subset(images / "annotations.json", subset, picked)
    report = tmp_path / "eval.json"
    rc = cli_main.main(["eval", str(subset), "--images-root", str(images), *TORCH_CPU, "--json", str(report)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "skipped 1 image(s) without 3D ground truth" in out and "mid-hip" in out
    datasets = json.loads(report.read_text())["datasets"]
    assert len(datasets) == 3
    for figures in datasets.values():
        assert figures["matched"] == 1
        for key in ("mpjpe_mm", "pa_mpjpe_mm", "root_error_mm"):
            assert math.isfinite(figures[key]) and figures[key] > 0
