"""Low-level statistics of whole images, real or rendered: sensor noise, sharpness, exposure and
colour. The camera effects of ``render`` are drawn to match what these measure on real footage
(the S11 clip, the annotated frames and the demo video of ../shared), so that a render's pixels
look like a camera's, not like an OpenGL frame buffer.

``python -m ros2_ctxpose.training.synthetic.image_statistics [--renders DIR ...]`` prints the
medians and quartiles per image set. Every image is measured at :data:`MEASURE_WIDTH` px wide, so
the previews a single-view set keeps (at most 640 px, JPEG quality 85) serve as well as the
full-size images of multi-view sets.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

#: Immerkær's noise-estimation kernel: the difference of two Laplacians, blind to linear ramps.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
#: Images are measured at this width: real sets come at 1000-1800 px and renders at 640-1280 px,
#: and noise and sharpness depend on the scale they are looked at.
MEASURE_WIDTH = 640


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """Statistics of one BGR uint8 image, measured at :data:`MEASURE_WIDTH` px wide.

    - ``noise``: Immerkær's estimate of the Gaussian noise sigma (grey levels) over the flattest
      half of the image, so that texture does not pass for noise (on pure noise that half is the
      quieter one: the figure is then ~0.67 sigma; a measure to compare image sets with);
    - ``sharpness``: mean |Laplacian| / mean |gradient| of the grey image (blur lowers it);
    - ``brightness``, ``contrast``: mean and standard deviation of the grey levels;
    - ``saturation``: mean HSV saturation (0-255); ``clipped``: share of pixels at 0 or 255.
    """
    scale = MEASURE_WIDTH / image.shape[1]
    img = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    residual = np.abs(cv2.filter2D(grey, -1, _NOISE_KERNEL))[1:-1, 1:-1]
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    gradient = np.hypot(gx, gy)
    flat = cv2.blur(gradient, (9, 9))[1:-1, 1:-1] <= np.median(gradient)
    noise = float(np.sqrt(np.pi / 2) / 6 * residual[flat].mean()) if flat.any() else 0.0
    laplacian = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    return {
        "noise": noise,
        "sharpness": float(laplacian.mean() / max(gradient.mean(), 1e-6)),
        "brightness": float(grey.mean()),
        "contrast": float(grey.std()),
        "saturation": float(cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].mean()),
        "clipped": float(((grey <= 0) | (grey >= 255)).mean()),
    }


def summarize_statistics(images: Iterable[np.ndarray]) -> dict[str, dict[str, float]]:
    """Median and quartiles of every statistic over a set of images."""
    rows = [image_statistics(image) for image in images]
    if not rows:
        raise ValueError("no images to measure")
    return {
        key: dict(zip(("p25", "median", "p75"), np.percentile([r[key] for r in rows], [25, 50, 75]).tolist()))
        for key in rows[0]
    } | {"images": {"count": float(len(rows))}}


def _images(paths: Iterable[Path], step: int = 1) -> Iterator[np.ndarray]:
    """Every ``step``-th readable frame of these images or videos (read as the CLI reads them)."""
    from ros2_ctxpose.core.media.inputs import iter_frames

    for index, frame in enumerate(iter_frames(paths)):
        if frame.image is not None and index % step == 0:
            yield frame.image


def real_image_sets(step: int) -> dict[str, Iterator[np.ndarray]]:
    """The real footage of ../shared: the S11 clip, the annotated frames and the demo video."""
    from ros2_ctxpose.core.annotations import read_annotations
    from ros2_ctxpose.core.media.videos import demo_video_path
    from ros2_ctxpose.core.paths import shared_data_dir

    data = shared_data_dir() / "data"
    s11 = read_annotations(data / "h36m_s11_walkdog" / "annotations.json").images
    annotated = read_annotations(data / "images" / "annotations.json").images
    return {
        "S11 WalkDog": _images([r.path for r in s11], step),
        "annotated frames": _images([r.path for r in annotated]),
        "demo video": _images([demo_video_path()], step),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=Path, nargs="*", default=[], help="folders of full-size rendered images")
    parser.add_argument("--step", type=int, default=10, help="every step-th frame of the real clips")
    args = parser.parse_args(argv)
    sets = real_image_sets(args.step)
    for folder in args.renders:
        sets[str(folder)] = _images(sorted(folder.rglob("images/*.jpg")))
    keys = ("noise", "sharpness", "brightness", "contrast", "saturation", "clipped")
    print(f"{'set':<40} {'images':>6} " + " ".join(f"{k:>18}" for k in keys))
    for name, images in sets.items():
        s = summarize_statistics(images)
        cells = " ".join(f"{s[k]['median']:7.3g} [{s[k]['p25']:.3g}-{s[k]['p75']:.3g}]".rjust(18) for k in keys)
        print(f"{name[-40:]:<40} {int(s['images']['count']):>6} {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
