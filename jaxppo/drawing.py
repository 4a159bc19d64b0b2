"""Classic-control frames drawn with numpy: the cart-pole, pendulum, acrobot and mountain car.

gymnax draws these envs through gymnasium and pygame, one window surface per frame: slow (minutes for
a 500-step episode on a CPU), noisy without a display, and a dependency the default install lacks.
Their scenes are a few rectangles, rods and discs, so here each frame is rasterised directly into an
RGB array (``[height, width, 3]`` uint8) from the env state, and an episode becomes a GIF through
Pillow (a matplotlib dependency) in one call. World coordinates follow gymnasium's pictures: y up,
the pole and pendulum upright at angle 0.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

__all__ = ["DRAWN_ENVS", "Canvas", "draw_frame", "write_gif"]

HEIGHT, WIDTH = 240, 360
BACKGROUND = (255, 255, 255)
DARK = (40, 40, 40)
POLE = (202, 152, 101)  # gymnasium's pole and rod colour
JOINT = (129, 132, 203)
TRACK = (120, 120, 120)
FLAG = (204, 204, 0)


class Canvas:
    """An RGB image with a world-to-pixel map: world ``x`` in ``[x_low, x_high]`` spans the width, world
    ``y`` is scaled alike and ``y_low`` sits at the bottom row."""

    def __init__(self, x_low: float, x_high: float, y_low: float, height: int = HEIGHT, width: int = WIDTH):
        self.image = np.empty((height, width, 3), np.uint8)
        self.image[:] = BACKGROUND
        self.scale = width / (x_high - x_low)
        self.x_low, self.y_low = x_low, y_low
        rows, cols = np.mgrid[0:height, 0:width]
        # World coordinates of every pixel centre.
        self._x = x_low + (cols + 0.5) / self.scale
        self._y = y_low + (height - 1 - rows + 0.5) / self.scale

    def pixel(self, x: float, y: float) -> tuple[int, int]:
        """``(row, col)`` of the world point ``(x, y)``."""
        col = int((x - self.x_low) * self.scale)
        row = self.image.shape[0] - 1 - int((y - self.y_low) * self.scale)
        return row, col

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Sequence[int]) -> None:
        """Fills the axis-aligned box with corners ``(x0, y0)`` and ``(x1, y1)``."""
        mask = (self._x >= min(x0, x1)) & (self._x <= max(x0, x1)) & (self._y >= min(y0, y1)) & (self._y <= max(y0, y1))
        self.image[mask] = color

    def rod(self, start: tuple[float, float], end: tuple[float, float], width: float, color: Sequence[int]) -> None:
        """Fills every pixel within ``width / 2`` of the segment from ``start`` to ``end``."""
        (ax, ay), (bx, by) = start, end
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.clip(((self._x - ax) * dx + (self._y - ay) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        distance2 = (self._x - (ax + t * dx)) ** 2 + (self._y - (ay + t * dy)) ** 2
        self.image[distance2 <= (width / 2) ** 2] = color

    def disc(self, centre: tuple[float, float], radius: float, color: Sequence[int]) -> None:
        self.rod(centre, centre, 2 * radius, color)

    def polyline(self, xs: np.ndarray, ys: np.ndarray, width: float, color: Sequence[int]) -> None:
        for i in range(len(xs) - 1):
            self.rod((xs[i], ys[i]), (xs[i + 1], ys[i + 1]), width, color)


def _cartpole(state: Any, params: Any) -> np.ndarray:
    threshold = float(getattr(params, "x_threshold", 2.4))
    half_pole = float(getattr(params, "length", 0.5))
    canvas = Canvas(-threshold * 1.25, threshold * 1.25, -0.6)
    x, theta = float(state.x), float(state.theta)
    canvas.rect(canvas.x_low, -0.02, -canvas.x_low, 0.02, TRACK)
    canvas.rect(x - 0.25, -0.15, x + 0.25, 0.15, DARK)  # the cart
    tip = (x + 2 * half_pole * math.sin(theta), 0.1 + 2 * half_pole * math.cos(theta))
    canvas.rod((x, 0.1), tip, 0.1, POLE)
    canvas.disc((x, 0.1), 0.04, JOINT)
    return canvas.image


def _pendulum(state: Any, params: Any) -> np.ndarray:
    canvas = Canvas(-1.3, 1.3, -1.3 * HEIGHT / WIDTH)
    theta = float(state.theta)
    canvas.rod((0.0, 0.0), (-math.sin(theta), math.cos(theta)), 0.2, POLE)
    canvas.disc((0.0, 0.0), 0.05, DARK)
    return canvas.image


def _acrobot(state: Any, params: Any) -> np.ndarray:
    canvas = Canvas(-2.4, 2.4, -2.4 * HEIGHT / WIDTH)
    a1, a2 = float(state.joint_angle1), float(state.joint_angle2)
    elbow = (math.sin(a1), -math.cos(a1))
    hand = (elbow[0] + math.sin(a1 + a2), elbow[1] - math.cos(a1 + a2))
    canvas.rect(-2.4, 0.995, 2.4, 1.005, TRACK)  # the height the tip must reach
    canvas.rod((0.0, 0.0), elbow, 0.2, POLE)
    canvas.rod(elbow, hand, 0.2, POLE)
    canvas.disc((0.0, 0.0), 0.08, JOINT)
    canvas.disc(elbow, 0.08, JOINT)
    return canvas.image


def _mountain_car(state: Any, params: Any) -> np.ndarray:
    low, high = float(getattr(params, "min_position", -1.2)), float(getattr(params, "max_position", 0.6))
    goal = float(getattr(params, "goal_position", 0.5))
    canvas = Canvas(low, high, -0.1)
    xs = np.linspace(low, high, 60)
    canvas.polyline(xs, np.sin(3 * xs) * 0.45 + 0.55, 0.01, TRACK)
    position = float(state.position)
    canvas.disc((position, math.sin(3 * position) * 0.45 + 0.59), 0.04, DARK)
    canvas.rod((goal, math.sin(3 * goal) * 0.45 + 0.55), (goal, math.sin(3 * goal) * 0.45 + 0.7), 0.008, DARK)
    canvas.rect(goal, math.sin(3 * goal) * 0.45 + 0.65, goal + 0.05, math.sin(3 * goal) * 0.45 + 0.7, FLAG)
    return canvas.image


DRAWN_ENVS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "CartPole-v1": _cartpole,
    "Pendulum-v1": _pendulum,
    "Acrobot-v1": _acrobot,
    "MountainCar-v0": _mountain_car,
    "MountainCarContinuous-v0": _mountain_car,
}


def draw_frame(env_name: str, state: Any, params: Any) -> Optional[np.ndarray]:
    """The frame ``[HEIGHT, WIDTH, 3]`` uint8 of one env state, or None for an env drawn elsewhere."""
    draw = DRAWN_ENVS.get(env_name)
    return None if draw is None else draw(state, params)


def write_gif(frames: Sequence[np.ndarray], path: str, frame_ms: int = 40) -> None:
    """All ``frames`` as one looping GIF at ``path``, written atomically."""
    import io

    from PIL import Image

    from jaxppo.run_io import atomic_write_bytes

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    atomic_write_bytes(path, buffer.getvalue())
