"""Classic-control frames drawn with numpy: the pole, rods and car land where the state puts them
(hand-computed pixel positions), and an episode becomes a GIF with one frame per state."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from PIL import Image

from jaxppo import drawing


def _is(image: np.ndarray, row: int, col: int, color) -> bool:
    return tuple(int(v) for v in image[row, col]) == tuple(color)


def test_cartpole_pole_points_where_theta_says():
    params = SimpleNamespace(x_threshold=2.4, length=0.5)
    upright = drawing.draw_frame("CartPole-v1", SimpleNamespace(x=0.0, theta=0.0), params)
    canvas = drawing.Canvas(-3.0, 3.0, -0.6)
    assert _is(upright, *canvas.pixel(0.0, 0.8), drawing.POLE)  # straight above the cart
    assert _is(upright, *canvas.pixel(0.5, 0.8), drawing.BACKGROUND)
    tilted = drawing.draw_frame("CartPole-v1", SimpleNamespace(x=1.0, theta=math.pi / 4), params)
    # The pole from (1.0, 0.1) at 45 degrees to the right: the point 0.7 along it.
    along = (1.0 + 0.7 * math.sin(math.pi / 4), 0.1 + 0.7 * math.cos(math.pi / 4))
    assert _is(tilted, *canvas.pixel(*along), drawing.POLE)
    assert _is(tilted, *canvas.pixel(1.0, 0.0), drawing.DARK)  # the cart moved to x = 1
    assert _is(tilted, *canvas.pixel(0.0, 0.0), drawing.TRACK)


def test_pendulum_and_acrobot_rods_follow_their_angles():
    canvas = drawing.Canvas(-1.3, 1.3, -1.3 * drawing.HEIGHT / drawing.WIDTH)
    down = drawing.draw_frame("Pendulum-v1", SimpleNamespace(theta=math.pi), None)
    assert _is(down, *canvas.pixel(0.0, -0.7), drawing.POLE) and _is(down, *canvas.pixel(0.0, 0.7), drawing.BACKGROUND)
    canvas = drawing.Canvas(-2.4, 2.4, -2.4 * drawing.HEIGHT / drawing.WIDTH)
    straight = drawing.draw_frame("Acrobot-v1", SimpleNamespace(joint_angle1=math.pi / 2, joint_angle2=0.0), None)
    assert _is(straight, *canvas.pixel(1.5, 0.0), drawing.POLE)  # both links along +x
    assert drawing.draw_frame("Breakout-MinAtar", None, None) is None  # drawn by gymnax instead


def test_an_episode_becomes_a_gif_with_one_frame_per_state(tmp_path):
    params = SimpleNamespace(x_threshold=2.4, length=0.5)
    frames = [drawing.draw_frame("CartPole-v1", SimpleNamespace(x=0.1 * t, theta=0.05 * t), params) for t in range(7)]
    path = str(tmp_path / "episode.gif")
    drawing.write_gif(frames, path)
    with Image.open(path) as gif:
        assert gif.n_frames == 7 and gif.size == (drawing.WIDTH, drawing.HEIGHT)
