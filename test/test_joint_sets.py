"""Joint-set mappings: names resolve, roots are where they should be, confidences propagate."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_ctxpose.core.joint_sets import JOINT_SETS, h36m_confidence
from ros2_ctxpose.core.skeleton import COCO17, H36M17


def test_every_mapping_resolves_and_is_one_to_one() -> None:
    for m in JOINT_SETS.values():
        d, h = zip(*m.compared)
        assert len(set(d)) == len(d) and len(set(h)) == len(h), m.name
        assert m.gt_compared(np.zeros((len(m.joints), 3))).shape == (len(d), 3)
        assert set(h) <= set(H36M17) and set(d) <= set(m.joints)
        d_idx, c_idx = m.coco_pairs()
        assert len(d_idx) >= 12 and all(0 <= c < len(COCO17) for c in c_idx)


def test_h36m_is_identity() -> None:
    joints = np.random.default_rng(0).normal(size=(17, 3))
    m = JOINT_SETS["h36m17"]
    np.testing.assert_array_equal(m.gt_compared(joints), m.pred_compared(joints))
    np.testing.assert_array_equal(m.gt_root(joints), joints[0])


def test_gta_root_is_mid_hip() -> None:
    m = JOINT_SETS["gta21"]
    joints = np.zeros((21, 3))
    joints[m.joints.index("left_hip")] = [1.0, 0.0, 2.0]
    joints[m.joints.index("right_hip")] = [0.0, 1.0, 4.0]
    np.testing.assert_allclose(m.gt_root(joints), [0.5, 0.5, 3.0])
    assert "mid-hip" in m.root_name
    h36m = np.zeros((17, 3))
    h36m[H36M17.index("left_hip")], h36m[H36M17.index("right_hip")] = [2, 0, 0], [0, 2, 0]
    np.testing.assert_allclose(m.pred_root(h36m), [1.0, 1.0, 0.0])


def test_confidence_of_inferred_joints() -> None:
    coco = np.zeros(17)
    coco[COCO17.index("left_hip")], coco[COCO17.index("right_hip")] = 1.0, 0.5
    h = h36m_confidence(coco)
    assert h[H36M17.index("pelvis")] == pytest.approx(0.75)
    assert h[H36M17.index("left_hip")] == pytest.approx(1.0)
    assert h[H36M17.index("thorax")] == 0.0


def test_layouts_match_the_annotation_file(annotations) -> None:
    declared = annotations().joint_sets
    assert declared
    for name, joints in declared.items():
        assert joints == JOINT_SETS[name].joints


def test_pelvis_is_mid_hip_where_both_exist(annotations) -> None:
    """Evidence for the root choice: in H36M and MPI-INF-3DHP the pelvis is the mid-hip."""
    checked = set()
    for truth in (image.truth for image in annotations()):
        if truth is not None and truth.joint_set in ("h36m17", "mpi3dhp17"):
            checked.add(truth.joint_set)
            m = JOINT_SETS[truth.joint_set]
            j = truth.joints_3d
            mid = j[[m.joints.index("left_hip"), m.joints.index("right_hip")]].mean(axis=0)
            np.testing.assert_allclose(m.gt_root(j), mid, atol=0.03)
    assert checked == {"h36m17", "mpi3dhp17"}
