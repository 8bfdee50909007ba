"""A small test 'film' rendered here: textured sets, two stylised characters with soft edges, a blurry scene."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (192, 144)
CHARACTERS = {
    # body colour, hair colour, stripe colour: designed palettes are what tells 3D characters apart
    "luca": ((60, 150, 80), (110, 70, 40), (230, 230, 210)),
    "giulia": ((230, 120, 40), (200, 40, 30), (250, 240, 120)),
}


def character_sprite(name: str, scale: int = 4) -> Image.Image:
    """RGBA sprite drawn 4x and downsampled, so its edge is soft and anti-aliased like a render's."""
    body, hair, stripe = CHARACTERS[name]
    w, h = 34 * scale, 50 * scale
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse([2 * scale, 12 * scale, 32 * scale, 49 * scale], fill=body + (255,))
    for k in range(5):  # clothes stripes: real detail for the sharpness measure
        y = (22 + 5 * k) * scale
        d.rectangle([6 * scale, y, 28 * scale, y + 2 * scale], fill=stripe + (255,))
    d.ellipse([7 * scale, 0, 27 * scale, 18 * scale], fill=hair + (255,))
    for ex in (11, 20):
        d.ellipse([ex * scale, 7 * scale, (ex + 4) * scale, 11 * scale], fill=(255, 255, 255, 255))
        d.ellipse([(ex + 1) * scale, 8 * scale, (ex + 3) * scale, 10 * scale], fill=(20, 20, 20, 255))
    return img.resize((34, 50), Image.LANCZOS)


def set_background(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, size=3)
    tiles = rng.integers(-25, 25, size=(SIZE[1] // 8 + 1, SIZE[0] // 8 + 1, 3))
    bg = np.clip(base + np.kron(tiles, np.ones((8, 8, 1)))[:SIZE[1], :SIZE[0]], 0, 255).astype(np.uint8)
    return Image.fromarray(bg)


def film_frames(scenes=4, seconds_per_scene=2.0, fps=12, blurry_scene=2, cast=(("luca", "giulia"),)):
    """Yield uint8 frames: each scene a new set; characters walk across it; one scene out of focus."""
    sprites = {n: character_sprite(n) for n in CHARACTERS}
    n = int(seconds_per_scene * fps)
    for s in range(scenes):
        bg = set_background(100 + s)
        who = cast[s % len(cast)]
        for i in range(n):
            frame = bg.copy()
            t = i / max(n - 1, 1)
            for k, name in enumerate(who):
                x = int(5 + t * (SIZE[0] - 45)) if k == 0 else int(SIZE[0] - 40 - t * (SIZE[0] - 45))
                y = 40 + 40 * k - 20 + int(6 * np.sin(2 * np.pi * t + k))
                frame.alpha_composite(sprites[name], (x, y)) if frame.mode == "RGBA" else frame.paste(
                    sprites[name], (x, y), sprites[name])
            if s == blurry_scene:
                frame = frame.filter(ImageFilter.GaussianBlur(3))
            yield np.asarray(frame.convert("RGB"))


def make_film(path, **kwargs) -> Path:
    from animation_studio.nodes import video_io

    fps = kwargs.get("fps", 12)
    frames = list(film_frames(**kwargs))

    def chunks():
        for i in range(0, len(frames), 16):
            yield np.stack(frames[i:i + 16])

    video_io.write_video(chunks(), fps, Path(path))
    return Path(path)


def reference_images(name: str) -> list[np.ndarray]:
    sprite = character_sprite(name)
    return [np.asarray(sprite)]
