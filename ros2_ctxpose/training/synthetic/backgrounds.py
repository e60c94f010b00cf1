"""Real photographs behind the rendered people, fetched once from Debian packages.

A detector trained on photographs must see rendered people in front of photographs, not of flat
colours. Photographs with a free licence and without people, reachable from Debian (bookworm)
packages, fetched by :func:`fetch_backgrounds` (``apt-get download`` + ``dpkg-deb -x``, no root
needed) into ``${XDG_CACHE_HOME:-~/.cache}/ros2_ctxpose/backgrounds`` (downscaled to at most
1600 px, with a ``manifest.json`` recording package, version, file and licence of each). Nothing
is ever copied into the repository. The command: ``ctxpose synth --fetch-backgrounds``.

Sources (Debian package: files; licence):

* ``lomiri-wallpapers-16.04`` (20.04.0-2): ``usr/share/backgrounds/`` Bridge_by_Sander_Klootwijk,
  Dragonfly_by_Bolly, Picture_0B/1A_by_freespace, Wine_by_Jakkub_Mede (a living room),
  aitzgorri/friends/life/picosdeeuropa/sunset_by_Aitzol_Berasategi, free_by_Peter_Nerlich,
  seeding_by_Clements_Engelhardt (.jpg); CC-BY-4.0, CC-BY-SA-4.0 or CC0-1.0 per file (its
  ``copyright`` file).
* ``lomiri-wallpapers-20.04`` (20.04.0-2): ``Kleiber_by_Lukas_Baubkus.jpg``; CC-BY-SA-3.0.
* ``plasma-workspace-wallpapers`` (4:5.27.5-2): ``usr/share/wallpapers/<name>/contents/images/
  2560x1600.jpg`` for BytheWater, ColdRipple, ColorfulCups, DarkestHour, EveningGlow, FallenLeaf,
  Grey, Kite, OneStandsOut, Path, summer_1am (the photographs among KDE's wallpapers); GPL-2+.
* ``mate-backgrounds`` (1.26.0-1): ``usr/share/backgrounds/mate/nature/*.jpg`` (12 photographs);
  GPL-2+.
* ``opencv-doc`` (4.6.0+dfsg-12): ``usr/share/doc/opencv-doc/examples/data/`` building, graf1,
  graf3, leuvenA, leuvenB, aloeL, fruits, rubberwhale1, licenseplate_motion, squirrel_cls,
  butterfly (streets, walls, a car, indoor objects); BSD-3-Clause (OpenCV's sample data; the
  +dfsg source drops the images without a free licence). Its samples with people (messi5,
  basketball, the chessboard series) are left out.

Most are outdoor and close-up photographs; indoor scenes are rare, which ``scene`` offsets with
rendered floors and occluders. Each use takes a random crop, scale, flip and colour jitter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FETCH_COMMAND = "ctxpose synth --fetch-backgrounds"
MAX_SIDE = 1600


@dataclass(frozen=True)
class Source:
    package: str
    licence: str
    files: tuple[str, ...]


_LOMIRI = "usr/share/backgrounds/"
_PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
_OPENCV = "usr/share/doc/opencv-doc/examples/data/"
SOURCES: tuple[Source, ...] = (
    Source(
        "lomiri-wallpapers-16.04",
        "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 (see the package's copyright)",
        tuple(
            _LOMIRI + f
            for f in (
                "Bridge_by_Sander_Klootwijk.jpg",
                "Dragonfly_by_Bolly.jpg",
                "Picture_0B_by_freespace.jpg",
                "Picture_1A_by_freespace.jpg",
                "Wine_by_Jakkub_Mede.jpg",
                "aitzgorri_by_Aitzol_Berasategi.jpg",
                "friends_by_Aitzol_Berasategi.jpg",
                "free_by_Peter_Nerlich.jpg",
                "life_by_Aitzol_Berasategi.jpg",
                "picosdeeuropa_by_Aitzol_Berasategi.jpg",
                "seeding_by_Clements_Engelhardt.jpg",
                "sunset_by_Aitzol_Berasategi.jpg",
            )
        ),
    ),
    Source("lomiri-wallpapers-20.04", "CC-BY-SA-3.0", (_LOMIRI + "Kleiber_by_Lukas_Baubkus.jpg",)),
    Source(
        "plasma-workspace-wallpapers",
        "GPL-2+",
        tuple(
            _PLASMA.format(n)
            for n in (
                "BytheWater",
                "ColdRipple",
                "ColorfulCups",
                "DarkestHour",
                "EveningGlow",
                "FallenLeaf",
                "Grey",
                "Kite",
                "OneStandsOut",
                "Path",
                "summer_1am",
            )
        ),
    ),
    Source(
        "mate-backgrounds",
        "GPL-2+",
        tuple(
            f"usr/share/backgrounds/mate/nature/{n}.jpg"
            for n in (
                "Aqua",
                "Blinds",
                "Dune",
                "FreshFlower",
                "Garden",
                "GreenMeadow",
                "LadyBird",
                "RainDrops",
                "Storm",
                "TwoWings",
                "Wood",
                "YellowFlower",
            )
        ),
    ),
    Source(
        "opencv-doc",
        "BSD-3-Clause",
        tuple(
            _OPENCV + f
            for f in (
                "building.jpg",
                "graf1.png",
                "graf3.png",
                "leuvenA.jpg",
                "leuvenB.jpg",
                "aloeL.jpg",
                "fruits.jpg",
                "rubberwhale1.png",
                "licenseplate_motion.jpg",
                "squirrel_cls.jpg",
                "butterfly.jpg",
            )
        ),
    ),
)


class BackgroundsMissing(FileNotFoundError):
    """The background photographs have not been fetched."""


def backgrounds_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ros2_ctxpose" / "backgrounds"


def fetch_backgrounds(dest: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Download the packages of :data:`SOURCES` (``apt-get download``), extract the listed
    photographs, downscale them into ``dest`` and write its ``manifest.json``."""
    dest = Path(dest or backgrounds_dir())
    dest.mkdir(parents=True, exist_ok=True)
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"fetching the backgrounds needs Debian's {tool} (this is not a Debian machine)")
    manifest = []
    with tempfile.TemporaryDirectory(prefix="ctxpose_bg_") as tmp:
        for source in SOURCES:
            log(f"backgrounds: apt-get download {source.package}")
            _run(["apt-get", "download", source.package], cwd=tmp)
            deb = next(Path(tmp).glob(f"{source.package}_*.deb"))
            version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
            root = Path(tmp) / source.package
            _run(["dpkg-deb", "-x", str(deb), str(root)])
            for rel in source.files:
                image = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)
                if image is None:
                    raise RuntimeError(f"{source.package} {version}: {rel} missing or unreadable")
                scale = min(1.0, MAX_SIDE / max(image.shape[:2]))
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                name = f"{source.package}__{Path(rel).stem}.jpg"
                cv2.imwrite(str(dest / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                manifest.append(
                    {
                        "file": name,
                        "package": source.package,
                        "version": version,
                        "path": rel,
                        "licence": source.licence,
                    }
                )
            deb.unlink()
            shutil.rmtree(root)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"backgrounds: {len(manifest)} photographs in {dest}")
    return dest


def _run(command: list[str], cwd: str | None = None) -> str:
    """Run a command quietly (apt-get warns about its sandbox when run as root); its output
    becomes the error message if it fails."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def load_backgrounds(dest: Path | None = None) -> list[np.ndarray]:
    """The fetched photographs (BGR uint8), or :class:`BackgroundsMissing` naming the command."""
    dest = Path(dest or backgrounds_dir())
    manifest = dest / "manifest.json"
    if not manifest.is_file():
        raise BackgroundsMissing(
            f"no background photographs in {dest}: run `{FETCH_COMMAND}` once "
            "(downloads ~300 MB of Debian packages, keeps ~15 MB)"
        )
    images = [cv2.imread(str(dest / entry["file"]), cv2.IMREAD_COLOR) for entry in json.loads(manifest.read_text())]
    if any(image is None for image in images):
        raise BackgroundsMissing(f"{dest} is incomplete: run `{FETCH_COMMAND}` again")
    return images


def random_crop(images: list[np.ndarray], rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A ``(height, width, 3)`` view of a random photograph: random crop of the target aspect
    (30-100 % of the largest one), flip, brightness/contrast/colour jitter."""
    image = images[rng.integers(len(images))]
    h, w = image.shape[:2]
    scale = rng.uniform(0.3, 1.0)
    cw = int(min(w, h * width / height) * scale)
    ch = max(1, int(cw * height / width))
    x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    crop = cv2.resize(image[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain = rng.uniform(0.6, 1.3) * rng.uniform(0.9, 1.1, 3)
    return np.clip(crop.astype(np.float32) * gain + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
