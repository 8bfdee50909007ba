"""Landmark overlay: every point, with brows, eyes and lips in their own colours."""
from __future__ import annotations

import numpy as np

from .expression import LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE

COLOURS = [(LEFT_BROW + RIGHT_BROW, (255, 170, 0)), (LEFT_EYE + RIGHT_EYE, (0, 200, 255)), (LIPS, (255, 60, 120))]


def draw_landmarks(frame: np.ndarray, points: np.ndarray, point_size: int = 1) -> np.ndarray:
    """A copy of a uint8 RGB frame with the face's points drawn (unchanged when the frame has no face)."""
    import cv2

    out = np.ascontiguousarray(frame.copy())
    if points is None or np.isnan(points).any():
        return out
    colour = np.full((len(points), 3), (80, 255, 80))
    for idx, c in COLOURS:
        colour[idx] = c
    for (x, y), c in zip(points[:, :2], colour):
        cv2.circle(out, (int(round(x)), int(round(y))), point_size, tuple(int(v) for v in c), -1, cv2.LINE_AA)
    return out
