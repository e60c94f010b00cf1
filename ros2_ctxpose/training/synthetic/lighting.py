"""A scene's light: sun, overcast sky or lamps, as the places a robot works in are lit.

Round 1 lit every scene with one to three directional lights under a flat ambient term, which
gives the even, shadowless look of a studio turntable. Real footage is lit in a few typical ways,
and the detector's features (edges, shading across limbs) differ between them:

- ``sun``: one hard directional light, low to high, plus sky fill (outdoors, clear);
- ``overcast``: weak directional light and strong ambient (outdoors, cloudy; soft, low contrast);
- ``indoor``: one to four lamps under the ceiling, point lights or spots, warm (tungsten) or
  neutral (fluorescent, LED), whose light falls off with distance, plus a weak window light now
  and then.

pyrender's diffuse term is about albedo x intensity / pi; a directional total of 2-4.5 plus the
ambient spans dim to bright without washing bright clothes out, and lamps are scaled so that at
the people's distance from them they give the same range.
"""

from __future__ import annotations

import math

import numpy as np

from .render import Light

#: Shares of the lighting setups in indoor scenes and in outdoor ones.
OUTDOOR_SETUPS = {"sun": 0.6, "overcast": 0.4}
#: RGB of cool daylight, warm tungsten and neutral LED/fluorescent light.
DAYLIGHT, TUNGSTEN, NEUTRAL = np.array([215.0, 228.0, 255.0]), np.array([255.0, 214.0, 170.0]), np.array([245.0] * 3)


def _direction(elevation_deg: float, azimuth: float) -> np.ndarray:
    """The way light travels from a source at this elevation and azimuth (world z up)."""
    e = math.radians(elevation_deg)
    return -np.array([math.cos(e) * math.cos(azimuth), math.cos(e) * math.sin(azimuth), math.sin(e)])


def _tint(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    w = rng.uniform(0, 1)
    return tuple(((1 - w) * a + w * b).tolist())


def outdoor_lighting(rng: np.random.Generator) -> tuple[list[Light], float]:
    """Sun or overcast sky: the lights and the ambient level."""
    setup = str(rng.choice(list(OUTDOOR_SETUPS), p=list(OUTDOOR_SETUPS.values())))
    if setup == "sun":
        direction = _direction(rng.uniform(15, 75), rng.uniform(0, 2 * math.pi))
        return [Light(direction, _tint(rng, DAYLIGHT, TUNGSTEN), float(rng.uniform(2.5, 5.0)))], float(
            rng.uniform(0.2, 0.45)
        )
    lights = [
        Light(_direction(rng.uniform(40, 90), rng.uniform(0, 2 * math.pi)), tuple(DAYLIGHT.tolist()), share)
        for share in rng.dirichlet(np.ones(int(rng.integers(1, 3)))) * rng.uniform(0.6, 1.6)
    ]
    return lights, float(rng.uniform(0.5, 0.9))


def indoor_lighting(rng: np.random.Generator, centre: np.ndarray, ceiling_m: float) -> tuple[list[Light], float]:
    """Lamps under a ceiling ``ceiling_m`` high, within a few metres of ``centre`` (x, y; the
    main person), and sometimes a window: the lights and the ambient level."""
    colour = TUNGSTEN if rng.random() < 0.4 else NEUTRAL
    count = int(rng.integers(1, 5))
    lights = []
    for share in rng.dirichlet(np.ones(count)) * rng.uniform(2.0, 4.5):
        offset = rng.uniform(0.0, 3.5) * np.array([math.cos(a := rng.uniform(0, 2 * math.pi)), math.sin(a)])
        position = np.array([*(centre + offset), ceiling_m - rng.uniform(0.05, 0.6)])
        # Scaled to give ``share`` at the height of a standing person's chest (1.3 m).
        reach = float(np.hypot(np.linalg.norm(offset), position[2] - 1.3))
        spot = rng.random() < 0.4  # a spot's cone lights the person with most of its power
        lights.append(
            Light(
                np.array([0.0, 0.0, -1.0]) + 0.3 * np.append(rng.normal(0, 1, 2), 0.0),
                _tint(rng, colour, colour * 0.93),
                float(share * reach**2),
                kind="spot" if spot else "point",
                position=position,
                cone_deg=float(rng.uniform(35, 70)),
            )
        )
    if rng.random() < 0.35:  # daylight through a window: low, from one side
        direction = _direction(rng.uniform(5, 30), rng.uniform(0, 2 * math.pi))
        lights.append(Light(direction, tuple(DAYLIGHT.tolist()), float(rng.uniform(0.5, 1.5))))
    return lights, float(rng.uniform(0.1, 0.35))


def key_light(lights: list[Light]) -> Light | None:
    """The light that casts the visible shadows: the strongest one (lamps judged at 2 m)."""
    if not lights:
        return None
    return max(lights, key=lambda light: light.intensity / (4.0 if light.kind != "directional" else 1.0))


def floor_irradiance(light: Light, at: np.ndarray) -> float:
    """The diffuse light ``light`` brings to the floor (z = 0) at ``at`` (x, y), as pyrender's
    diffuse term has it: intensity x cos(incidence) / pi, lamps divided by the squared distance."""
    if light.kind == "directional":
        return light.intensity * max(0.0, -float(light.direction[2])) / math.pi
    offset = np.asarray(light.position, np.float64) - [*at, 0.0]
    dist = float(np.linalg.norm(offset))
    return light.intensity * float(offset[2]) / dist**3 / math.pi
