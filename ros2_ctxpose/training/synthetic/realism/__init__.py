"""How far renders are from real images in the detector's eyes (issue #23's realism report).

The detector runs on real material (``real``: the S11 WalkDog clip, the annotated frames of
../shared, the demo footage) and its stored outputs on a rendered set are read back
(``renders``); both end up as a :class:`~.sample.PeopleSample` (per-joint error where truth
exists, per-joint confidences, pooled feature crops). ``distributions`` compares errors and
confidences (with the renders/real median-error ratio, the issue's target metric, and its
bootstrap interval), ``classifier`` measures how well a logistic regression tells rendered crops
from real ones, ``report`` puts it together and ``__main__`` is the command:

``python -m ros2_ctxpose.training.synthetic.realism --renders DIR [--renders DIR2 ...] [--json OUT]``
"""
