"""Letterbox maps, NMS and feature sampling, checked against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ros2_ctxpose.core.detector import Letterbox
from ros2_ctxpose.core.detector.features import crop_people
from ros2_ctxpose.core.detector.postprocess import box_iou, nms, postprocess
from ros2_ctxpose.core.feature_sampling import sample_features

# ------------------------------------------------------------------------------ letterbox


@pytest.mark.parametrize(
    ("hw", "rect", "input_hw", "pad"),
    [
        ((1080, 810), True, (640, 480), (0, 0)),  # bus.jpg: what Ultralytics' predict feeds
        ((1080, 810), False, (640, 640), (80, 0)),
        ((720, 1280), True, (384, 640), (0, 12)),  # 360 rows of image, 12 + 12 rows of padding
        ((1002, 1000), True, (640, 640), (0, 0)),  # 639 columns + 1 column of padding on the right
        ((100, 50), True, (640, 320), (0, 0)),  # small images are scaled up
        ((1, 10000), True, (32, 640), (0, 15)),  # extreme aspect: the image stays one row tall
    ],
)
def test_letterbox_shapes(hw: tuple[int, int], rect: bool, input_hw: tuple[int, int], pad: tuple[int, int]) -> None:
    lb = Letterbox.fit(hw, 640, 32, rect=rect)
    assert lb.input_hw == input_hw and lb.pad_xy == pad
    out = lb.apply(np.zeros((*hw, 3), np.uint8))
    assert out.shape == (*input_hw, 3)
    if pad[0]:
        assert (out[:, : pad[0]] == 114).all() and (out[:, pad[0] : -pad[0]] == 0).all()


@pytest.mark.parametrize(
    ("hw", "rect"), [((1080, 810), False), ((720, 1280), True), ((384, 640), True), ((1002, 1000), True)]
)
def test_letterbox_apply_into_a_used_slot_equals_apply(hw: tuple[int, int], rect: bool) -> None:
    """What the detector does with its reused input batch: the slot holds the last frame (here 7s
    everywhere) and must end up exactly as a fresh ``apply``, pad strips included."""
    lb = Letterbox.fit(hw, 640, 32, rect=rect)
    image = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    batch = np.full((2, *lb.input_hw, 3), 7, np.uint8)
    out = lb.apply_into(image, batch[1])
    assert np.shares_memory(out, batch)  # written in place, nothing allocated
    np.testing.assert_array_equal(batch[1], lb.apply(image))
    assert (batch[0] == 7).all()  # the other slot is untouched
    with pytest.raises(ValueError, match="this letterbox needs"):
        lb.apply_into(image, np.zeros((*lb.input_hw, 4), np.uint8))
    with pytest.raises(ValueError, match="this letterbox was fit to"):
        lb.apply_into(image[1:], batch[1])


def test_letterbox_round_trip_and_grid() -> None:
    lb = Letterbox.fit((720, 1280), 640, 32, rect=True)
    xy = np.array([[0.0, 0.0], [1280.0, 720.0], [333.3, 99.9]])
    np.testing.assert_allclose(lb.to_original(lb.to_input(xy)), xy, atol=1e-9)
    np.testing.assert_allclose(lb.to_input(xy[:2]), [[0, 12], [640, 372]], atol=1e-9)
    # The whole network input spans [-1, 1]: image corners land inside by the padding.
    np.testing.assert_allclose(lb.to_grid(xy[:2]), [[-1, -1 + 24 / 384], [1, 1 - 24 / 384]], atol=1e-9)
    t = torch.tensor(xy, dtype=torch.float32, requires_grad=True)
    lb.to_grid(t).sum().backward()  # torch inputs stay differentiable
    assert t.grad is not None and torch.all(t.grad > 0)


def test_letterbox_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="empty"):
        Letterbox.fit((0, 10))
    with pytest.raises(ValueError, match="imgsz must be a multiple of 32, got 100"):
        Letterbox.fit((10, 10), imgsz=100)


def test_grid_addresses_the_same_point_on_every_stride() -> None:
    """A map whose value is the input-pixel x coordinate of each cell centre, at strides 4..32:
    sampling at ``to_grid(p)`` must return ``to_input(p).x`` on every map (bilinear is exact on
    a linear ramp away from the borders)."""
    lb = Letterbox.fit((480, 640), 640, 32, rect=True)
    h, w = lb.input_hw
    maps = [((torch.arange(w // s) + 0.5) * s).expand(1, 1, h // s, w // s).clone() for s in (4, 8, 16, 32)]
    points = np.array([[100.0, 50.0], [320.0, 240.0], [500.5, 400.25]])
    grid = torch.from_numpy(lb.to_grid(points)).float()[None]
    for sampled in sample_features(maps, grid):
        np.testing.assert_allclose(sampled[0, :, 0].numpy(), lb.to_input(points)[:, 0], atol=1e-3)


# ------------------------------------------------------------------------------ NMS


def _greedy_nms_reference(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    """The textbook loop, one box at a time."""
    order, keep = scores.argsort(descending=True).tolist(), []
    iou = box_iou(boxes, boxes)
    for i in order:
        if all(iou[i, j] <= thr for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_nms_equals_greedy_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(150, 2, generator=g) * 200  # dense: long suppression chains
    sizes = torch.rand(150, 2, generator=g) * 60 + 10
    boxes = torch.cat((centres - sizes / 2, centres + sizes / 2), 1)
    scores = torch.rand(150, generator=g)
    for thr in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, thr).tolist() == _greedy_nms_reference(boxes, scores, thr)


def test_nms_empty() -> None:
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_postprocess_filters_suppresses_and_caps() -> None:
    # Three anchors: two overlapping people and one below the score threshold.
    boxes_xywh = torch.tensor([[50.0, 50, 40, 80], [52, 50, 40, 80], [200, 50, 40, 80]])
    scores = torch.tensor([0.9, 0.8, 0.2])
    kpts = torch.arange(3 * 6, dtype=torch.float32).view(3, 6)  # 2 keypoints x (x, y, conf)
    pred = torch.cat((boxes_xywh, scores[:, None], kpts), 1).T[None]  # (1, 4 + 1 + 6, 3)
    (out,) = postprocess(pred, (2, 3), nc=1, conf=0.25, iou=0.7, max_det=10)
    assert out.scores.tolist() == pytest.approx([0.9])
    assert out.boxes_xyxy.tolist() == [[30.0, 10.0, 70.0, 90.0]]
    assert out.keypoints.tolist() == [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]
    (out,) = postprocess(pred, (2, 3), nc=1, conf=0.1, iou=0.95, max_det=2)
    assert out.scores.tolist() == pytest.approx([0.9, 0.8])  # capped at max_det, by score


def test_postprocess_takes_the_best_class_and_half_precision_input() -> None:
    """Thresholding happens on the score row before anything is cast: fp16 predictions (the CUDA
    path) give the fp32 answer in fp32, and with several classes the best one is the score."""
    boxes_xywh = torch.tensor([[50.0, 50, 40, 80], [200, 50, 40, 80], [400, 50, 40, 80]])
    classes = torch.tensor([[0.1, 0.9], [0.6, 0.2], [0.1, 0.2]])  # the third is below 0.25 in both
    kpts = torch.arange(3 * 6, dtype=torch.float32).view(3, 6)
    pred = torch.cat((boxes_xywh, classes, kpts), 1).T[None]  # (1, 4 + 2 + 6, 3)
    (out,) = postprocess(pred, (2, 3), nc=2, conf=0.25, iou=0.7, max_det=10)
    assert out.scores.tolist() == pytest.approx([0.9, 0.6])
    assert out.keypoints[:, 0].tolist() == [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]  # after both class rows
    (half,) = postprocess(pred.half(), (2, 3), nc=2, conf=0.25, iou=0.7, max_det=10)
    assert half.scores.dtype == half.boxes_xyxy.dtype == half.keypoints.dtype == torch.float32
    torch.testing.assert_close(half.boxes_xyxy, out.boxes_xyxy)
    torch.testing.assert_close(half.scores, out.scores, atol=1e-3, rtol=0)


# ------------------------------------------------------------------------------ features


def test_sample_features_matches_manual_bilinear_and_is_differentiable() -> None:
    torch.manual_seed(0)
    fmap = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    grid = (torch.rand(2, 7, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    (out,) = sample_features([fmap], grid)
    assert out.shape == (2, 7, 5)
    # Manual bilinear at pixel-centre convention: x_px = (gx + 1) * W / 2 - 0.5.
    b, p = 1, 3
    x = (grid[b, p, 0].item() + 1) * 8 / 2 - 0.5
    y = (grid[b, p, 1].item() + 1) * 6 / 2 - 0.5
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    ax, ay = x - x0, y - y0
    f = fmap[b]
    manual = (
        (1 - ax) * (1 - ay) * f[:, y0, x0]
        + ax * (1 - ay) * f[:, y0, x0 + 1]
        + (1 - ax) * ay * f[:, y0 + 1, x0]
        + ax * ay * f[:, y0 + 1, x0 + 1]
    )
    torch.testing.assert_close(out[b, p], manual)
    assert torch.autograd.gradcheck(lambda g: sample_features([fmap], g)[0], (grid,))


def test_sample_features_accepts_inference_mode_maps_with_trainable_grid() -> None:
    with torch.inference_mode():
        fmap = torch.randn(1, 4, 5, 5)
    grid = torch.zeros(1, 3, 2, requires_grad=True)
    sample_features([fmap], grid)[0].sum().backward()
    assert grid.grad is not None


def test_sample_features_validates_shapes() -> None:
    with pytest.raises(ValueError, match=r"grid_xy must be \(B, P, 2\)"):
        sample_features([torch.zeros(1, 2, 3, 3)], torch.zeros(4, 2))
    with pytest.raises(ValueError, match="does not match grid batch"):
        sample_features([torch.zeros(2, 2, 3, 3)], torch.zeros(1, 4, 2))


# ------------------------------------------------------------------------------ person crops


def test_person_crops_read_the_maps_at_the_right_place_on_every_level() -> None:
    """Maps whose value is the input x coordinate: each crop cell must hold the x of its centre,
    and a joint's crop coordinate must point at that joint (so the lifter samples where it is)."""
    lb = Letterbox.fit((240, 320), imgsz=128, stride=32, rect=True)  # scale 0.4, input 96x128, no pad
    strides = (4, 8, 16, 32)
    maps = []
    for s in strides:
        h, w = lb.input_hw[0] // s, lb.input_hw[1] // s
        x = (torch.arange(w, dtype=torch.float64) + 0.5) * s
        maps.append(x.expand(1, 1, h, w).clone())
    box = torch.tensor([[100.0, 60.0, 180.0, 200.0]], dtype=torch.float64)  # 80 x 140 px, original
    joints = torch.tensor([[[140.0, 130.0], [110.0, 70.0]]], dtype=torch.float64)
    people = crop_people(maps, lb, box, joints, sizes=(8, 8, 4, 4), margin=1.0)
    side = 140 * 0.4
    np.testing.assert_allclose(
        people.boxes_input[0].numpy(), [56 - side / 2, 52 - side / 2, 56 + side / 2, 52 + side / 2]
    )
    for crop in people.crops[:2]:  # fine levels: bilinear on a linear map is exact inside the input
        n = crop.shape[-1]
        centres = 56 - side / 2 + (torch.arange(n, dtype=torch.float64) + 0.5) * side / n
        np.testing.assert_allclose(crop[0, 0, n // 2].numpy(), centres.numpy(), atol=1e-9)
    expected = (lb.to_input(joints.numpy()[0]) - [56.0, 52.0]) / (side / 2)
    np.testing.assert_allclose(people.joints_grid[0].numpy(), expected)
    (at_joint,) = sample_features([people.crops[0]], people.joints_grid[:, :1].float().double())
    np.testing.assert_allclose(at_joint[0, 0, 0].item(), lb.to_input(joints.numpy()[0, 0])[0], atol=0.3)


def test_person_crops_read_zeros_outside_the_image_and_take_each_persons_image() -> None:
    lb = Letterbox.fit((64, 64), imgsz=64, stride=32)
    maps = [torch.stack([torch.full((1, 8, 8), 1.0), torch.full((1, 8, 8), 2.0)])]
    boxes = torch.tensor([[0.0, 0.0, 64.0, 64.0], [16.0, 16.0, 48.0, 48.0]])
    joints = torch.zeros(2, 17, 2)
    people = crop_people(maps, lb, boxes, joints, sizes=(4,), margin=2.0, image_index=torch.tensor([0, 1]))
    first, second = people.crops[0][:, 0]
    assert first[0, 0] == 0.0 and first[1:3, 1:3].eq(1.0).all()  # the margin reaches past the image
    assert second.eq(2.0).all()
    with pytest.raises(ValueError, match="crop sizes"):
        crop_people(maps, lb, boxes, joints, sizes=(4, 4), margin=1.0)


def test_person_crops_are_roialign_of_each_persons_image() -> None:
    """The crops equal the plain RoIAlign they stand for (2x2 bilinear samples per cell, averaged),
    for people of one image and of several, on random maps (the fast path reorders the samples)."""
    g = torch.Generator().manual_seed(3)
    lb = Letterbox.fit((64, 96), imgsz=96, stride=32, rect=True)
    maps = [torch.randn(2, 3, 64 // s, 96 // s, generator=g, dtype=torch.float64) for s in (4, 8)]
    boxes = torch.tensor([[5.0, 3.0, 40.0, 60.0], [50.0, -10.0, 90.0, 50.0], [30.0, 20.0, 34.0, 26.0]])
    joints = torch.rand(3, 17, 2, generator=g) * 60
    for image_index in (torch.tensor([0, 0, 0]), torch.tensor([1, 0, 1])):
        people = crop_people(maps, lb, boxes, joints, sizes=(6, 3), margin=1.3, image_index=image_index)
        lo, hi = people.boxes_input[:, :2], people.boxes_input[:, 2:]
        for crop, feat in zip(people.crops, maps):
            n = 2 * crop.shape[-1]
            cells = (torch.arange(n, dtype=torch.float64) + 0.5) / n
            xs, ys = lo[:, :1] + (hi - lo)[:, :1] * cells, lo[:, 1:] + (hi - lo)[:, 1:] * cells
            grid = (
                torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), -1)
                * 2
                / torch.tensor([96.0, 64.0], dtype=torch.float64)
                - 1
            )
            sampled = torch.nn.functional.grid_sample(feat[image_index], grid, align_corners=False)
            expected = torch.nn.functional.avg_pool2d(sampled, 2)
            np.testing.assert_allclose(crop.numpy(), expected.numpy(), atol=1e-12)
