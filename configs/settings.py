"""Typed studio settings: configs/global.yaml, then a user file, then environment variables."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PACK_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PACK_ROOT / "configs" / "global.yaml"
ENV_PREFIX = "ANIMATION_STUDIO__"
USER_CONFIG_ENV = "ANIMATION_STUDIO_CONFIG"


class ConfigError(ValueError):
    """A settings file or variable is wrong; the message names the file, key and expected type."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StudioSettings(_Strict):
    style: str
    negative_style: str


class DatasetSettings(_Strict):
    alpha_threshold: float = Field(ge=0.0, le=1.0)
    blur_threshold: float = Field(ge=0.0)
    min_images_per_character: int = Field(ge=1)
    max_images_per_character: int = Field(ge=1)
    color_jitter: Literal[False] = False
    horizontal_flip: Literal[False] = False
    frames_per_scene: int = Field(ge=1)
    dedupe_hamming_distance: int = Field(ge=0, le=64)

    @model_validator(mode="after")
    def _range(self):
        if self.min_images_per_character > self.max_images_per_character:
            raise ValueError("min_images_per_character must not exceed max_images_per_character")
        return self


class RoleSettings(_Strict):
    backend: Literal["ollama", "openai", "local", "scripted"]
    model: str
    fallback: str | None = None


class LLMSettings(_Strict):
    ollama_host: str
    openai_base_url: str
    keep_alive: str | int
    num_ctx: int = Field(ge=512)
    timeout_s: float = Field(gt=0)
    share_gpu_with_comfyui: bool
    roles: dict[str, RoleSettings]
    local_model: str

    @field_validator("roles")
    @classmethod
    def _seed_roles(cls, roles):
        missing = {"creative_director", "video_analyst", "quality_evaluator", "tool_executor"} - set(roles)
        if missing:
            raise ValueError(f"missing roles: {sorted(missing)}")
        return roles


class DirectorSettings(_Strict):
    max_iterations: int = Field(ge=1, le=20)
    max_seconds: float = Field(gt=0)
    max_tokens: int = Field(gt=0)
    allowed_core_nodes: list[str]


class PathSettings(_Strict):
    models: str
    input: str
    output: str
    temp: str
    extra_model_folders: dict[str, list[str]] = {}


class ComfyUISettings(_Strict):
    servers: list[str] = []
    timeout_s: float = Field(gt=0)


class NetworkSettings(_Strict):
    """Outbound HTTP (configs/net.py): which servers graph inputs may name, and how much any answer may be."""
    gpt_sovits_url: str = "http://127.0.0.1:9880"
    allowed_urls: list[str] = []
    max_response_mb: float = Field(default=64, gt=0)
    max_download_mb: float = Field(default=4096, gt=0)
    max_ws_run_mb: float = Field(default=1024, gt=0)
    connect_timeout_s: float = Field(default=10, gt=0)
    private_names: list[str] = []


class Settings(_Strict):
    studio: StudioSettings
    dataset: DatasetSettings
    llm: LLMSettings
    director: DirectorSettings
    paths: PathSettings
    comfyui: ComfyUISettings
    network: NetworkSettings = NetworkSettings()


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _env_overrides(environ: dict[str, str]) -> dict:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__") if k]
        if not keys:
            continue
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        # YAML parsing gives env values their natural type: 0.2, true, [a, b].
        node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else raw
    return out


def _describe(errors: list[dict], sources: list[str]) -> str:
    lines = []
    for err in errors:
        key = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        lines.append(f"  {key}: {err['msg']} (got {value!r})")
    return f"Invalid settings in {' + '.join(sources)}:\n" + "\n".join(lines)


def load_settings_from(paths: list[Path], environ: dict[str, str] | None = None) -> Settings:
    data: dict = {}
    sources = []
    for path in paths:
        data = _deep_merge(data, _read_yaml(Path(path)))
        sources.append(str(path))
    env = _env_overrides(dict(os.environ if environ is None else environ))
    if env:
        data = _deep_merge(data, env)
        sources.append(f"environment ({ENV_PREFIX}*)")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors(), sources)) from None


@lru_cache(maxsize=1)
def _cached(user_file: str | None, env_key: tuple) -> Settings:
    paths = [DEFAULT_CONFIG]
    if user_file:
        paths.append(Path(user_file).expanduser())
    return load_settings_from(paths, dict(env_key))


def load_settings() -> Settings:
    """The effective settings (cached until the user file or ANIMATION_STUDIO__* variables change)."""
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))
    return _cached(os.environ.get(USER_CONFIG_ENV), env_key)
