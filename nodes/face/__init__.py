"""Face family: MediaPipe landmarks, identity likeness, expression exaggeration, expressive moments.

Nothing heavy is imported here: mediapipe, dlib, insightface, cv2 and scipy load inside the functions.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
