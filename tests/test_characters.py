"""The character registry: real config files, clear errors, files resolved only when needed, 3D prompts."""
from __future__ import annotations

import pytest

from animation_studio.configs import characters
from animation_studio.nodes import bridge


def test_registry_lists_the_three_seed_characters():
    assert {"luca", "alberto", "giulia"} <= set(characters.list_characters())


@pytest.mark.parametrize("name, words", [("luca", ["brown hair", "green eyes", "boy"]),
                                         ("alberto", ["italian", "curly"]),
                                         ("giulia", ["red", "freckles"])])
def test_each_character_has_the_seed_look_lora_and_voice(name, words):
    char = characters.load_character(name)
    for word in words:
        assert word in char.description.lower()
    assert char.lora is not None and char.lora.weight == pytest.approx(0.8)
    assert char.lora.file.endswith(".safetensors")
    assert char.trigger_words and char.negative_prompt and char.reference_images
    assert char.voice_profile == name


def test_unknown_character_lists_the_known_ones():
    with pytest.raises(characters.CharacterError) as info:
        characters.load_character("bob")
    assert "bob" in str(info.value) and "luca" in str(info.value) and "giulia" in str(info.value)


def test_name_lookup_is_case_insensitive_and_refuses_paths():
    assert characters.load_character("LUCA").display_name == "Luca"
    with pytest.raises(characters.CharacterError):
        characters.load_character("../global")


def test_missing_files_are_named_only_when_needed(studio_dirs):
    char = characters.load_character("luca")  # loading never touches the files
    with pytest.raises(bridge.MissingModel) as info:
        char.lora_path()
    assert "luca_character.safetensors" in str(info.value) and str(studio_dirs["models"] / "loras") in str(info.value)
    with pytest.raises(bridge.MissingModel) as info:
        char.reference_paths()
    assert "luca_front.png" in str(info.value) and str(studio_dirs["input"]) in str(info.value)
    assert str(studio_dirs["models"] / "characters" / "luca") in str(info.value)


def test_files_are_found_in_models_and_input_folders(studio_dirs):
    char = characters.load_character("luca")
    (studio_dirs["models"] / "loras").mkdir()
    (studio_dirs["models"] / "loras" / "luca_character.safetensors").write_bytes(b"x")
    ref_dir = studio_dirs["models"] / "characters" / "luca"
    ref_dir.mkdir(parents=True)
    (ref_dir / "luca_front.png").write_bytes(b"png")
    (studio_dirs["input"] / "luca_side.png").write_bytes(b"png")
    assert char.lora_path().name == "luca_character.safetensors"
    assert [p.parent for p in char.reference_paths()] == [ref_dir, studio_dirs["input"]]


def test_malformed_character_file_names_the_file_and_field(tmp_path):
    (tmp_path / "zed.yaml").write_text("name: zed\ndisplay_name: Zed\ndescription: x\nlora: {weight: 0.8}\n")
    with pytest.raises(characters.CharacterError) as info:
        characters.load_character("zed", folder=tmp_path)
    assert "zed.yaml" in str(info.value) and "lora.file" in str(info.value)


def test_build_prompt_puts_triggers_first_and_3d_style_and_negatives():
    char = characters.load_character("luca")
    positive, negative = characters.build_prompt(char, "running", "excited", "sunny Italian seaside")
    assert positive.startswith("luca_character")
    for bit in ("running", "excited expression", "sunny Italian seaside",
                "pixar style, 3d animation, smooth shading, cinematic lighting"):
        assert bit in positive
    assert negative.startswith("2d, flat, anime, low quality") and "blue eyes" in negative
    own, _ = characters.build_prompt(char.as_dict(), "waving", "", "", style="claymation")
    assert own.endswith("waving, claymation") and "pixar" not in own


def test_character_and_prompt_nodes_run_in_the_embedded_engine(engine, studio_dirs):
    graph = {
        "1": {"class_type": "AnimStudio_Character",
              "inputs": {"name": "giulia", "action": "riding a vespa", "expression": "happy", "background": "town square"}},
        "2": {"class_type": "AnimStudio_Prompt3D",
              "inputs": {"subject": "a girl", "action": "jumping", "expression": "joyful", "background": "harbour",
                         "style": "", "extra_negative": "blurry", "character": ["1", 0]}},
        "3": {"class_type": "AnimStudio_ShowJSON", "inputs": {"text": ["1", 1]}},
        "4": {"class_type": "AnimStudio_ShowJSON", "inputs": {"text": ["2", 1]}},
    }
    result = engine.run(graph)
    assert result.status == "success", result.error or result.node_errors
    character_out = [values[0] for values in result.values["1"]]  # one list per output, as in ComfyUI
    assert character_out[0]["name"] == "giulia" and character_out[3] == "giulia_character.safetensors"
    assert character_out[4] == pytest.approx(0.8)
    assert "freckles" in character_out[1] and "riding a vespa" in character_out[1]
    assert result.outputs["4"]["text"][0].endswith("blurry") and "no freckles" in result.outputs["4"]["text"][0]
