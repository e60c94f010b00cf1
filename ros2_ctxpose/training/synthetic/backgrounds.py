"""Real photographs behind the rendered people, fetched once from Debian packages.

A detector trained on photographs must see rendered people in front of photographs, not of flat
colours. Photographs with a free licence and without people, reachable from Debian (bookworm)
packages, fetched by :func:`fetch_backgrounds` (``apt-get download`` + ``dpkg-deb -x``, no root
needed) into ``${XDG_CACHE_HOME:-~/.cache}/ros2_ctxpose/backgrounds`` (downscaled to at most
1600 px, with a ``manifest.json`` recording package, version, file and licence of each). Nothing
is ever copied into the repository. The command: ``ctxpose synth --fetch-backgrounds``.

Only photographs that depict outdoor places at a person's scale, seen from about where a robot
stands (streets, buildings, paths, shores, landscapes), are kept; macro, close-up and abstract
wallpapers made rendered people look like toys on a leaf. Indoor scenes are rendered rooms
(``rooms``), not photographs. (Fetches before 2026-12-04 also stored one KDE photograph under
all eleven KDE names; the cache is refused until fetched again.) Sources (Debian package: files;
licence):

* ``lomiri-wallpapers-16.04`` (20.04.0-2): ``usr/share/backgrounds/``
  aitzgorri/life/picosdeeuropa/sunset_by_Aitzol_Berasategi (.jpg); CC-BY-4.0, CC-BY-SA-4.0 or
  CC0-1.0 per file (its ``copyright`` file).
* ``plasma-workspace-wallpapers`` (4:5.27.5-2): ``usr/share/wallpapers/<name>/contents/images/
  2560x1600.jpg`` for ColdRipple, DarkestHour, EveningGlow, Path, summer_1am; GPL-2+.
* ``mate-backgrounds`` (1.26.0-1): ``usr/share/backgrounds/mate/nature/`` Storm; GPL-2+.
* ``opencv-doc`` (4.6.0+dfsg-12): ``usr/share/doc/opencv-doc/examples/data/`` building, leuvenA,
  leuvenB (streets); BSD-3-Clause (OpenCV's sample data). Its samples with people (messi5,
  basketball) are left out.

Dropped as macro or abstract (2026-12-04): lomiri Dragonfly, Picture_0B, Picture_1A, free,
seeding; lomiri-wallpapers-20.04 Kleiber (the whole package); plasma ColorfulCups, FallenLeaf,
Grey, Kite, OneStandsOut; mate Aqua, Blinds, FreshFlower, Garden, GreenMeadow, LadyBird,
RainDrops, TwoWings, Wood, YellowFlower; opencv graf3 (graf1 again), aloeL, fruits, rubberwhale1,
squirrel_cls, butterfly. Dropped as close-ups or not at eye level (engine round 3, on a contact
sheet of the photographs): lomiri Bridge (cables against the sky), Wine (a coffee table),
friends (two dogs); plasma BytheWater (boards in macro); mate Dune (grass in macro); opencv graf1
(graffiti filling the frame), licenseplate_motion (a car's rear). A cache fetched with more
photographs than these is used as it is (only the listed ones are loaded).

Each use takes a random crop, scale, flip and colour jitter.
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
                "aitzgorri_by_Aitzol_Berasategi.jpg",
                "life_by_Aitzol_Berasategi.jpg",
                "picosdeeuropa_by_Aitzol_Berasategi.jpg",
                "sunset_by_Aitzol_Berasategi.jpg",
            )
        ),
    ),
    Source(
        "plasma-workspace-wallpapers",
        "GPL-2+",
        tuple(
            _PLASMA.format(n)
            for n in (
                "ColdRipple",
                "DarkestHour",
                "EveningGlow",
                "Path",
                "summer_1am",
            )
        ),
    ),
    Source("mate-backgrounds", "GPL-2+", ("usr/share/backgrounds/mate/nature/Storm.jpg",)),
    Source(
        "opencv-doc",
        "BSD-3-Clause",
        tuple(
            _OPENCV + f
            for f in (
                "building.jpg",
                "leuvenA.jpg",
                "leuvenB.jpg",
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
                name = _local_name(source, rel)
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


def _local_name(source: Source, rel: str) -> str:
    """The cached file's name: the package and the path below the source's common folder (KDE's
    wallpapers are all called 2560x1600.jpg; named by their file alone they overwrote each other)."""
    common = os.path.commonpath([str(Path(f).parent) for f in source.files])
    return f"{source.package}__{'_'.join(Path(rel).relative_to(common).with_suffix('').parts)}.jpg"


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
    entries = json.loads(manifest.read_text())
    if dest == backgrounds_dir():
        expected = {_local_name(source, rel) for source in SOURCES for rel in source.files}
        if not expected <= {entry["file"] for entry in entries}:
            raise BackgroundsMissing(f"{dest} lacks photographs of SOURCES: run `{FETCH_COMMAND}` again")
        entries = [entry for entry in entries if entry["file"] in expected]
    images = [cv2.imread(str(dest / entry["file"]), cv2.IMREAD_COLOR) for entry in entries]
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
