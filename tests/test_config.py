from pathlib import Path

import pytest

from animation_studio.configs.settings import DEFAULT_CONFIG, ConfigError, load_settings, load_settings_from


def test_global_yaml_has_the_studio_parameters():
    s = load_settings_from([DEFAULT_CONFIG], environ={})
    assert s.dataset.alpha_threshold == 0.15
    assert s.dataset.blur_threshold == 80
    assert (s.dataset.min_images_per_character, s.dataset.max_images_per_character) == (200, 500)
    assert s.dataset.color_jitter is False and s.dataset.horizontal_flip is False
    assert s.llm.roles["video_analyst"].model == "qwen2.5vl"
    assert s.llm.roles["creative_director"].model == "deepseek-v3"
    assert s.llm.roles["creative_director"].fallback == "llama3.3"
    assert s.llm.roles["tool_executor"].model == "qwen2.5-coder"
    assert s.llm.ollama_host.startswith("http://")


def test_user_file_and_environment_override(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("dataset:\n  blur_threshold: 60\nllm:\n  ollama_host: http://gpu-box:11434\n")
    s = load_settings_from([DEFAULT_CONFIG, user], environ={"ANIMATION_STUDIO__DATASET__ALPHA_THRESHOLD": "0.2"})
    assert s.dataset.blur_threshold == 60
    assert s.dataset.alpha_threshold == 0.2
    assert s.llm.ollama_host == "http://gpu-box:11434"
    assert s.dataset.frames_per_scene == 8  # untouched keys keep the default


def test_bad_value_names_file_key_and_type(tmp_path):
    user = tmp_path / "bad.yaml"
    user.write_text("dataset:\n  blur_threshold: lots\n")
    with pytest.raises(ConfigError) as err:
        load_settings_from([DEFAULT_CONFIG, user], environ={})
    msg = str(err.value)
    assert str(user) in msg and "dataset.blur_threshold" in msg and "number" in msg


def test_unknown_key_and_forbidden_augmentation_are_rejected(tmp_path):
    user = tmp_path / "bad.yaml"
    user.write_text("dataset:\n  horizontal_flip: true\n  colour_jiter: 0.3\n")
    with pytest.raises(ConfigError) as err:
        load_settings_from([DEFAULT_CONFIG, user], environ={})
    msg = str(err.value)
    assert "dataset.horizontal_flip" in msg and "dataset.colour_jiter" in msg


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings_from([bad], environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings_from([tmp_path / "nope.yaml"], environ={})


def test_load_settings_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ANIMATION_STUDIO__PATHS__OUTPUT", str(tmp_path))
    assert load_settings().paths.output == str(tmp_path)
    monkeypatch.setenv("ANIMATION_STUDIO__DIRECTOR__MAX_ITERATIONS", "0")
    with pytest.raises(ConfigError, match="director.max_iterations"):
        load_settings()
