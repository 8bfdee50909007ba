"""Shared fixtures: every test runs with its own input/output/models folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def studio_dirs(tmp_path, monkeypatch):
    """Point the pack's input/output/temp/models folders at a fresh temporary tree."""
    dirs = {name: tmp_path / name for name in ("input", "outputs", "temp", "models")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("ANIMATION_STUDIO__PATHS__INPUT", str(dirs["input"]))
    monkeypatch.setenv("ANIMATION_STUDIO__PATHS__OUTPUT", str(dirs["outputs"]))
    monkeypatch.setenv("ANIMATION_STUDIO__PATHS__TEMP", str(dirs["temp"]))
    monkeypatch.setenv("ANIMATION_STUDIO__PATHS__MODELS", str(dirs["models"]))
    return dirs


@pytest.fixture
def engine():
    from animation_studio.agent.engine import EmbeddedEngine

    return EmbeddedEngine()
