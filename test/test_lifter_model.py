"""ContextLifter: shapes, root-relativity, the geometry-only and context paths, input masking."""

from __future__ import annotations

import pytest
import torch

from ros2_ctxpose.core.lifter import ContextLifter, LifterConfig
from ros2_ctxpose.core.skeleton import COCO17_FLIP, H36M17_FLIP

CHANNELS = (64, 128, 128, 256)
CROP_SIZES = LifterConfig().context_crop_sizes


def small_model() -> ContextLifter:
    """A small lifter with a random head (a fresh one answers all zeros: its head starts at zero)."""
    torch.manual_seed(0)
    model = ContextLifter(LifterConfig(dim=32, depth=2, heads=2))
    torch.nn.init.normal_(model.head.weight, std=0.05)
    return model


def inputs(batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    kp = torch.randn(batch, 17, 2, generator=g) * 0.1
    conf = torch.rand(batch, 17, generator=g)
    return kp, conf


def crops(people: int = 3) -> list[torch.Tensor]:
    """Random per-person feature crops of every level, shaped as ``crop_people`` returns them."""
    g = torch.Generator().manual_seed(2)
    return [torch.randn(people, c, s, s, generator=g) for c, s in zip(CHANNELS, CROP_SIZES)]


def test_geometry_only_output_is_root_relative_h36m17() -> None:
    model = small_model()
    kp, conf = inputs()
    out = model(kp, conf)
    assert out.shape == (3, 17, 3)
    assert torch.all(out[:, 0] == 0)
    assert out[:, 1:].abs().sum() > 0


def test_context_path_is_root_relative_and_each_person_reads_only_their_own_crops() -> None:
    model = small_model().eval()
    model.config.flip_test = False
    torch.nn.init.normal_(model.context.out.weight, std=0.1)
    kp, conf = inputs(3)
    grid = kp * 2.0
    out = model(kp, conf, crops(3), grid)
    assert out.shape == (3, 17, 3) and torch.all(out[:, 0] == 0)
    changed = [c.clone() for c in crops(3)]
    for c in changed:
        c[1] += 1.0
    other = model(kp, conf, changed, grid)
    torch.testing.assert_close(other[[0, 2]], out[[0, 2]])
    assert not torch.allclose(other[1], out[1])


def test_untrained_context_branch_changes_nothing() -> None:
    """The context output projection starts at zero, so mocap-only weights are unchanged by features."""
    model = small_model().eval()
    model.config.flip_test = False  # the context path never flip-averages; compare like with like
    kp, conf = inputs()
    torch.testing.assert_close(model(kp, conf), model(kp, conf, crops(), kp * 2.0))


def test_context_gradients_reach_offset_and_weight_predictors() -> None:
    model = small_model()
    kp, conf = inputs()
    feats = crops()
    opt = torch.optim.SGD(model.context.parameters(), lr=0.1)
    for _ in range(2):  # the first step moves the zero-initialised output projection
        opt.zero_grad()
        model(kp, conf, feats, kp * 2.0).square().sum().backward()
        opt.step()
    ctx = model.context
    assert ctx.offsets.weight.grad.abs().sum() > 0
    assert ctx.weights.weight.grad.abs().sum() > 0
    assert all(p.weight.grad.abs().sum() > 0 for p in ctx.level_proj)


def test_context_changes_the_answer_once_trained() -> None:
    model = small_model().eval()
    torch.nn.init.normal_(model.context.out.weight, std=0.1)
    kp, conf = inputs()
    assert not torch.allclose(model(kp, conf), model(kp, conf, crops(), kp * 2.0))


def test_eyes_and_ears_are_ignored() -> None:
    model = small_model().eval()
    kp, conf = inputs()
    moved = kp.clone()
    moved[:, 1:5] += 0.3
    torch.testing.assert_close(model(kp, conf), model(moved, conf))


def test_zero_confidence_joints_do_not_move_the_normalisation() -> None:
    model = small_model().eval()
    kp, conf = inputs()
    conf[:, 9] = 0.0
    far = kp.clone()
    far[:, 9] += 10.0
    _, g1, _ = model.normalize_input(kp, conf)
    _, g2, _ = model.normalize_input(far, conf)
    torch.testing.assert_close(g1, g2)


def test_bad_shapes_raise_clear_errors() -> None:
    model = small_model()
    kp, conf = inputs()
    with pytest.raises(ValueError, match="kp_norm"):
        model(kp[:, :13], conf)
    with pytest.raises(ValueError, match="conf"):
        model(kp, conf[:, :5])
    with pytest.raises(ValueError, match="joints_grid"):
        model(kp, conf, crops())
    with pytest.raises(ValueError, match="feature levels"):
        model(kp, conf, crops()[:2], kp)


def test_config_round_trip() -> None:
    cfg = LifterConfig(dim=48, depth=3, context_trained=True)
    assert LifterConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        LifterConfig.from_dict({"dim": 8, "nonsense": 1})


def _mirrored(kp: torch.Tensor, conf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return kp[:, list(COCO17_FLIP)] * torch.tensor([-1.0, 1.0]), conf[:, list(COCO17_FLIP)]


def test_flip_averaging_makes_the_prediction_mirror_consistent() -> None:
    """With flip_test (eval mode) the mirrored input gives exactly the mirrored pose; without it a
    model is not mirror-symmetric by itself, so the check can tell the two apart."""
    model = small_model().eval()
    kp, conf = inputs()
    mirror_out = torch.tensor([-1.0, 1.0, 1.0])
    model.config.flip_test = True
    torch.testing.assert_close(model(*_mirrored(kp, conf)), model(kp, conf)[:, list(H36M17_FLIP)] * mirror_out)
    model.config.flip_test = False
    plain = model(*_mirrored(kp, conf))
    assert not torch.allclose(plain, model(kp, conf)[:, list(H36M17_FLIP)] * mirror_out, atol=1e-4)


def test_flip_averaging_is_off_in_training_and_with_context() -> None:
    model = small_model().eval()
    kp, conf = inputs()
    grid = kp * 2.0
    with torch.no_grad():
        model.config.flip_test = False
        single, single_context = model(kp, conf), model(kp, conf, crops(), grid)
        model.config.flip_test = True
        torch.testing.assert_close(model(kp, conf, crops(), grid), single_context)
        torch.testing.assert_close(model.train()(kp, conf), single)  # training sees one view


def test_depth_only_context_keeps_the_geometry_paths_image_plane_answer() -> None:
    """With context_depth_only the image context may move the joints' depths, never their x, y:
    those stay exactly the (flip-averaged) geometry path's."""
    model = small_model().eval()
    torch.nn.init.normal_(model.context.out.weight, std=0.1)
    model.config.context_depth_only = True
    kp, conf = inputs()
    grid = kp * 2.0
    with torch.no_grad():
        geometry, both = model(kp, conf), model(kp, conf, crops(), grid)
        model.config.context_depth_only = False
        full_context = model(kp, conf, crops(), grid)
    torch.testing.assert_close(both[..., :2], geometry[..., :2])
    torch.testing.assert_close(both[..., 2], full_context[..., 2])
    assert not torch.allclose(both[..., 2], geometry[..., 2])


@pytest.mark.parametrize("flip_test", [True, False])
def test_depth_only_context_takes_the_image_plane_from_the_geometry_path(flip_test: bool) -> None:
    """One batched call gives what separate calls give: x, y of the (flip-averaged) geometry path
    and z of the context path."""
    model = small_model().eval()
    torch.nn.init.normal_(model.context.out.weight, std=0.1)
    kp, conf = inputs(3)
    grid = kp * 2.0
    model.config.flip_test = flip_test
    geometry = model(kp, conf)
    model.config.flip_test, model.config.context_depth_only = False, False
    context = model(kp, conf, crops(3), grid)
    model.config.flip_test, model.config.context_depth_only = flip_test, True
    both = model(kp, conf, crops(3), grid)
    torch.testing.assert_close(both[..., :2], geometry[..., :2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both[..., 2], context[..., 2], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(geometry[..., 2], context[..., 2])


def test_lift_gives_the_geometry_paths_pose_for_placing_the_root() -> None:
    """``lift`` returns the output pose and the geometry path's: with depth-only context weights
    given crops they differ (in depth only); without crops, or with a full context answer, they
    are the same pose."""
    model = small_model().eval()
    torch.nn.init.normal_(model.context.out.weight, std=0.1)
    model.config.context_depth_only = True
    kp, conf = inputs(3)
    grid = kp * 2.0
    with torch.no_grad():
        pose, placement = model.lift(kp, conf, crops(3), grid)
        torch.testing.assert_close(pose, model(kp, conf, crops(3), grid))
        torch.testing.assert_close(placement, model(kp, conf), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(pose[..., 2], placement[..., 2])
        alone, same = model.lift(kp, conf)
        assert alone is same
        model.config.context_depth_only = False
        full, same = model.lift(kp, conf, crops(3), grid)
        assert full is same
