"""Director logic with a scripted backend: brief floor, recipes vs the catalog, repair, security, refine,
approve, budget stop, resume after a kill, memory, the CLI and the Director node's expansion."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

from animation_studio.agent.catalog import pack_catalog
from animation_studio.agent.director import recipes as R
from animation_studio.agent.director.builder import GraphBuilder
from animation_studio.agent.director.graph import DirectorContext, run_director, saved_state
from animation_studio.agent.director.memory import Memory
from animation_studio.agent.director.planner import IntentError, LLMCaller, keyword_brief, understand
from animation_studio.agent.director.repair import validate_and_repair
from animation_studio.agent.director.security import check_graph
from animation_studio.agent.engine import EmbeddedEngine

STUDIO = {
    "parody_video": "funny parody of Luca's first ocean scene with exaggerated expressions and dramatic slow motion",
    "character_voice": "Luca saying 'Silenzio, Bruno!' with determination",
    "character_image": "Luca running, excited, sunny Italian seaside",
}


OTHER = {"composition": "turn this clip into a GIF with a caption that says Ciao",
         "lora_dataset": "prepare a LoRA dataset for Giulia from this clip"}


class Reply:
    def __init__(self, data, text=None):
        self.data, self.text = data, text if text is not None else json.dumps(data)
        self.prompt_tokens, self.completion_tokens, self.seconds, self.model, self.backend = 10, 5, 0.01, "fake", "scripted"


class FakeBackend:
    """Same interface as agent.llm backends: answers by the schema it is asked for."""

    def __init__(self, answer=None):
        self.answer = answer or (lambda messages, schema, images: None)
        self.calls, self.unloaded = [], 0

    def chat(self, messages, schema=None, images=None, temperature=0.0, max_tokens=1024, timeout=None):
        self.calls.append((messages, schema, images))
        data = self.answer(messages, schema, images)
        if isinstance(data, Exception):
            raise data
        return data if isinstance(data, Reply) else Reply(data)

    def unload(self):
        self.unloaded += 1


@pytest.fixture(autouse=True)
def _ngram(monkeypatch):
    monkeypatch.setenv("ANIMATION_STUDIO_EMBEDDER", "ngram")


@pytest.fixture(scope="module")
def catalog():
    return pack_catalog()


def _ctx(tmp_path, engine, backend=None, **kw):
    return DirectorContext(engine=engine, llm=LLMCaller(backend), run_dir=tmp_path / kw.pop("name", "run"), **kw)


# ---------------------------------------------------------------- brief
def test_keyword_brief_reads_the_three_studio_intents():
    parody, _ = keyword_brief(STUDIO["parody_video"])
    assert (parody.task_kind, parody.characters, parody.emotion) == ("parody_video", ["luca"], "funny")
    assert parody.slow_motion > 1 and parody.exaggeration > 1
    voice, _ = keyword_brief(STUDIO["character_voice"])
    assert (voice.task_kind, voice.dialogue, voice.emotion) == ("character_voice", "Silenzio, Bruno!", "determined")
    image, _ = keyword_brief(STUDIO["character_image"])
    assert (image.task_kind, image.action, image.setting) == ("character_image", "running", "sunny Italian seaside")


@pytest.mark.parametrize("intent", ["", "   ", "asdf qwerty", "write me a python program to sort a list"])
def test_empty_or_unknown_intent_is_refused(intent):
    with pytest.raises(IntentError):
        keyword_brief(intent)


def test_llm_brief_merges_only_valid_fields_and_never_overrides_keywords():
    bad = FakeBackend(lambda m, s, i: {"task_kind": "character_voice", "characters": ["bruno_unknown"],
                                       "emotion": "", "setting": "on a Vespa", "action": "", "dialogue": ""})
    brief, source, _ = understand(STUDIO["character_image"], {}, "", LLMCaller(bad))
    assert brief.task_kind == "character_image"  # keywords decided it; a weak model cannot flip it
    assert brief.characters == ["luca"] and source["task_kind"] == "keywords"
    brief, source, _ = understand("Luca in a picture", {}, "", LLMCaller(bad))
    assert brief.setting == "on a Vespa" and source["setting"] == "llm"


def test_invalid_json_from_the_llm_is_recorded_with_the_reason():
    caller = LLMCaller(FakeBackend(lambda m, s, i: Reply(None, "sure! here you go: {not json")))
    assert caller.ask("creative_director", "sys", "user", {"type": "object"}) is None
    assert "invalid JSON" in caller.log[0]["rejected"] and caller.log[0]["raw"].startswith("sure!")


# ---------------------------------------------------------------- recipes, builder, repair, security
def test_every_recipe_builds_a_valid_allow_listed_graph_or_says_why_not(catalog, studio_dirs):
    (studio_dirs["input"] / "clip.mp4").write_bytes(b"")  # LoadVideo's validator only checks that it exists
    from animation_studio.agent.director.planner import fill_slots

    assert {"parody_video", "character_voice", "character_image", "lora_dataset", "composition"} <= set(R.task_kinds())
    intents = {**STUDIO, **OTHER}
    for recipe in R.RECIPES.values():
        missing = recipe.missing(catalog)
        if missing:
            assert recipe.unavailable_reason(catalog) .startswith("needs node(s)")
            continue
        clip = {"video": ["clip.mp4"]} if recipe.task_kind in ("parody_video", "lora_dataset", "composition") else {}
        brief, _ = keyword_brief(intents[recipe.task_kind], clip)
        assert brief.task_kind == recipe.task_kind, (recipe.name, brief.task_kind)
        ctx = {"intent": intents[recipe.task_kind], "inputs": {"video": ["clip.mp4"]}, "catalog": catalog}
        slots, _ = fill_slots(recipe, brief, ctx, LLMCaller(None))
        assert set(slots) == {s.name for s in recipe.slots}, recipe.name
        b = GraphBuilder(catalog)
        recipe.build(b, slots, ctx)
        graph = b.finalize()
        outcome = validate_and_repair(graph, catalog, max_rounds=0)
        assert outcome.ok and not outcome.actions, (recipe.name, outcome.errors)
        assert check_graph(graph, catalog) == [], recipe.name


def test_recipe_with_missing_nodes_is_unavailable_and_planner_falls_back(catalog):
    from animation_studio.agent.director.planner import choose_recipe

    brief, _ = keyword_brief(STUDIO["character_voice"])
    reduced = catalog.restricted([n for n in catalog.names() if n != "AnimStudio_CharacterVoice"])
    recipe, why, unavailable = choose_recipe(brief, reduced, {})
    assert recipe.name == "character_voice_script" and "last resort" in why
    assert "AnimStudio_CharacterVoice" in unavailable["character_voice_tts"]


def test_repair_fixes_node_errors_within_the_bound(catalog):
    graph = {"1": {"class_type": "AnimStudio_SolidImag", "inputs": {"width": 99999, "height": "tall"}},
             "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"filename_prefix": "x"}}}
    outcome = validate_and_repair(graph, catalog)
    assert outcome.ok, outcome.errors
    assert outcome.graph["1"]["class_type"] == "AnimStudio_SolidImage"
    assert outcome.graph["1"]["inputs"]["width"] == 8192 and outcome.graph["1"]["inputs"]["height"] == 512
    assert outcome.graph["2"]["inputs"]["images"] == ["1", 0]
    assert len(outcome.actions) >= 3 and outcome.rounds <= 3
    hopeless = {"1": {"class_type": "RunShellCommand", "inputs": {"cmd": "rm -rf /"}}}
    out = validate_and_repair(hopeless, catalog)
    assert not out.ok and "RunShellCommand" in " ".join(out.errors)


def test_security_rejects_unlisted_classes_and_paths_outside_the_folders(catalog, studio_dirs):
    graph = {"1": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": "/etc/passwd"}},
             "2": {"class_type": "AnimStudio_SaveText", "inputs": {"text": "x", "filename_prefix": "../../escape"}},
             "3": {"class_type": "KSamplerAdvancedEvil", "inputs": {}}}
    problems = check_graph(graph, catalog)
    assert len(problems) == 3
    assert any("/etc/passwd" in p for p in problems) and any("'..'" in p for p in problems)
    assert any("not allow-listed" in p for p in problems)
    ok = {"1": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": str(studio_dirs["input"] / "a.png")}}}
    assert check_graph(ok, catalog) == []


# ---------------------------------------------------------------- the loop
def _slot_editor(edits_per_call):
    """Answers the edit schema with the next scripted edits; everything else gets nothing usable."""
    queue = list(edits_per_call)

    def answer(messages, schema, images):
        if schema and "edits" in schema.get("properties", {}):
            return {"edits": queue.pop(0) if queue else []}
        return {}
    return answer


def test_refine_then_approve_with_scripted_scores(tmp_path, studio_dirs, monkeypatch):
    from animation_studio.agent.director import graph as G

    scores = iter([0.3, 0.9])
    monkeypatch.setattr(G, "evaluate", lambda files, brief, recipe, slots, llm, blur: {
        "score": next(scores), "metrics": {"files_produced": 1.0}, "vision": {}, "notes": [], "edits": []})
    backend = FakeBackend(_slot_editor([[{"slot": "width", "value": 640, "reason": "wider"}]]))
    memory = Memory(tmp_path / "mem.sqlite")
    ctx = _ctx(tmp_path, EmbeddedEngine(), backend, memory=memory, max_iterations=3)
    state = run_director(STUDIO["character_image"], ctx, run_id="r1")
    assert state["status"] == "approved" and state["iteration"] == 2
    assert [it["score"] for it in state["iterations"]] == [0.3, 0.9]
    assert state["iterations"][1]["slots"]["width"] == 640
    assert state["iterations"][1]["graph"] != state["iterations"][0]["graph"]
    assert state["tokens"] > 0 and all("messages" in c for c in state["llm_log"])
    assert all(Path(f).is_file() for f in state["files"])
    hits = memory.similar("Luca running on a sunny seaside, excited", "character_image")
    assert hits and hits[0]["recipe"] == state["recipe"] and hits[0]["slots"]["width"] == 640


def test_budget_stop_after_max_iterations(tmp_path, studio_dirs, monkeypatch):
    from animation_studio.agent.director import graph as G

    monkeypatch.setattr(G, "evaluate", lambda *a: {"score": 0.1, "metrics": {}, "vision": {}, "notes": [],
                                                    "edits": [{"slot": "strength", "value": 0.9}]})
    backend = FakeBackend(_slot_editor([[{"slot": "emotion", "value": "angry"}], [{"slot": "emotion", "value": "sad"}]]))
    ctx = _ctx(tmp_path, EmbeddedEngine(), backend, max_iterations=2)
    state = run_director(STUDIO["character_voice"], ctx, run_id="b1")
    assert state["status"] == "budget" and len(state["iterations"]) == 2
    assert "iteration budget (2)" in state["message"]


def test_execution_error_is_scored_zero_and_fed_back(tmp_path, studio_dirs):
    class Broken(EmbeddedEngine):
        def run(self, graph, run_dir=None, on_event=None, run_id=None, keep_values=True):
            result = super().run({"1": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": "missing.png"}},
                                  "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0],
                                                                                          "filename_prefix": "x"}}},
                                 run_dir=run_dir, run_id=run_id)
            return result

    ctx = _ctx(tmp_path, Broken(), max_iterations=2)
    state = run_director(STUDIO["character_image"], ctx, run_id="e1")
    assert state["status"] in ("budget", "stalled")
    first = state["iterations"][0]
    assert first["score"] == 0.0 and first["execution"]["status"] == "invalid"


def test_llm_timeout_stops_with_a_clear_message(tmp_path, studio_dirs):
    backend = FakeBackend(lambda m, s, i: TimeoutError("request timed out after 1 s"))
    state = run_director(STUDIO["character_image"], _ctx(tmp_path, EmbeddedEngine(), backend), run_id="t1")
    assert state["status"] == "llm_timeout" and "did not answer in time" in state["message"]


def test_resume_after_a_kill_continues_from_the_last_finished_step(tmp_path, studio_dirs):
    engine = EmbeddedEngine()
    ctx = _ctx(tmp_path, engine, name="k1", fail_after="execute")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_director(STUDIO["character_image"], ctx, run_id="k1")
    saved = saved_state(tmp_path / "k1", "k1")
    assert saved["recipe"] and "execution" not in saved  # the killed step left no result
    ctx2 = _ctx(tmp_path, engine, name="k1")
    state = run_director("", ctx2, run_id="k1", resume=True)
    assert state["status"] == "approved" and state["intent"] == STUDIO["character_image"]
    assert [k for k in state["step_times"] if k.endswith("understand")] == ["0:understand"]  # not redone


def test_vram_handoff_unloads_before_executing(tmp_path, studio_dirs, monkeypatch):
    monkeypatch.setenv("ANIMATION_STUDIO__LLM__SHARE_GPU_WITH_COMFYUI", "true")
    backend = FakeBackend()
    run_director(STUDIO["character_image"], _ctx(tmp_path, EmbeddedEngine(), backend), run_id="v1")
    assert backend.unloaded >= 1


# ---------------------------------------------------------------- CLI and node
def test_cli_direct_writes_run_json_and_rejects_bad_intents(tmp_path, studio_dirs, capsys):
    from animation_studio.agent.cli import main

    out = tmp_path / "runs"
    assert main(["direct", STUDIO["character_image"], "--llm", "none", "--out", str(out), "--no-memory"]) == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "approved" and record["iterations"][0]["graph"] and record["files"]
    assert main(["direct", "", "--llm", "none", "--out", str(out)]) == 2
    assert main(["direct", "please file my taxes", "--llm", "none", "--out", str(out), "--no-memory"]) == 3
    err = capsys.readouterr().err
    assert "What I can do" in err and "character_voice" in err


def test_director_node_iterates_by_expansion_on_the_embedded_engine(studio_dirs, tmp_path):
    graph = {"1": {"class_type": "AnimStudio_LLMDirector", "inputs": {
        "intent": STUDIO["character_voice"], "character": "", "llm": "none", "max_iterations": 2,
        "approve_score": 0.99}},
        "2": {"class_type": "AnimStudio_SaveText", "inputs": {"text": ["1", 2], "filename_prefix": "report"}}}
    result = EmbeddedEngine().run(graph, run_dir=tmp_path / "node")
    assert result.ok, result.message()
    assert any(n.startswith("1.it1.") for n in result.executed) and "1.it1.eval" in result.executed
    report = json.loads(result.values["1"][2][0])
    assert report["recipe"] == "character_voice_tts" and report["iterations"] >= 1
    assert any(f.endswith(".wav") for f in result.files)


def test_an_extra_validators_errors_feed_the_same_bounded_repair(catalog):
    """Inside ComfyUI its own validator runs beside ours; what only it reports is repaired the same way."""
    graph = {"1": {"class_type": "AnimStudio_SolidImage", "inputs": {"width": 640, "height": 360}},
             "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    seen = []

    def stricter(g):  # refuses widths over 512, as a stricter server-side catalog would
        seen.append(g["1"]["inputs"]["width"])
        if g["1"]["inputs"]["width"] > 512:
            return {"1": {"errors": [{"type": "value_bigger_than_max", "message": "Value 640 bigger than max of 512",
                                      "details": "width", "extra_info": {"input_name": "width", "input_config": [
                                          "INT", {"default": 512, "min": 64, "max": 512}]}}],
                          "dependent_outputs": ["2"], "class_type": "AnimStudio_SolidImage"}}
        return {}

    outcome = validate_and_repair(graph, catalog, extra_validator=stricter)
    assert outcome.ok and outcome.validators == ["animation_studio", "comfyui"]
    # The repair clamps to the limit the error reports (512), not our catalog's (8192).
    assert outcome.graph["1"]["inputs"]["width"] == 512 and seen == [640, 512] and outcome.actions
    assert outcome.external_errors[0].startswith("node 1 (AnimStudio_SolidImage), input 'width'")
    hopeless = validate_and_repair(graph, catalog, max_rounds=2,
                                   extra_validator=lambda g: {"2": {"errors": [{
                                       "type": "exception_during_validation", "message": "boom", "details": "",
                                       "extra_info": {}}], "class_type": "AnimStudio_SaveImage"}})
    assert not hopeless.ok and any("boom" in e for e in hopeless.errors)


# ---------------------------------------------------------------- free composition
def _by_schema(compose_answer):
    """A ScriptedBackend script: the composition schema gets `compose_answer`, other questions get no answer."""
    from animation_studio.agent.llm import LLMError

    def reply(messages, schema):
        if schema and "nodes" in schema.get("properties", {}):
            return compose_answer
        return LLMError("scripted: no answer for this question")
    return reply


def test_a_composed_graph_from_the_llm_is_repaired_and_runs(tmp_path, studio_dirs):
    from animation_studio.agent.llm import ScriptedBackend

    backend = ScriptedBackend(_by_schema({"nodes": [
        {"id": "a", "class_type": "AnimStudio_SolidImage", "inputs": {"width": "320", "height": 1,
                                                                     "top_color": "#223344", "bottom_color": "#ffcc00"}},
        {"id": "b", "class_type": "AnimStudio_SaveImage", "inputs": {"images": ["a", 0], "filename_prefix": "card"}}]}))
    ctx = _ctx(tmp_path, EmbeddedEngine(), backend, max_iterations=1)
    state = run_director("make a gradient title card, orange and blue", ctx, run_id="c1")
    assert state["status"] == "approved" and state["recipe"] == "composed_graph", state.get("message")
    assert "composed by the LLM from the live catalog" in state["notes"]
    # The schema was built from the live catalog: class names as an enum, at most 12 nodes, no Director inside.
    schema = next(c["schema"] for c in backend.calls if c["schema"] and "nodes" in c["schema"]["properties"])
    enum = schema["properties"]["nodes"]["items"]["properties"]["class_type"]["enum"]
    assert "AnimStudio_SolidImage" in enum and "AnimStudio_LLMDirector" not in enum
    assert schema["properties"]["nodes"]["maxItems"] == 12
    assert any("height" in r and "value_smaller_than_min" in r for r in state["repairs"]), state["repairs"]
    from PIL import Image

    (png,) = [f for f in state["files"] if f.endswith(".png")]
    assert Image.open(png).size[0] == 320 and Image.open(png).size[1] >= 8


def test_an_invalid_composed_graph_is_rejected_with_the_reason(tmp_path, studio_dirs):
    from animation_studio.agent.llm import ScriptedBackend

    bad = {"nodes": [{"id": "1", "class_type": "AnimStudio_LoadImage", "inputs": {"image": "/etc/passwd"}},
                     {"id": "2", "class_type": "AnimStudio_SaveVideo", "inputs": {"video": ["1", 0]}}]}
    # With a deterministic floor (title card) the run goes on without the LLM's graph, and says why.
    state = run_director("make a 2-second gradient title card that says Ciao",
                         _ctx(tmp_path, EmbeddedEngine(), ScriptedBackend(_by_schema(bad)), name="r1",
                              max_iterations=1), run_id="r1")
    assert state["status"] == "approved", state.get("message")
    rejected = next(n for n in state["notes"] if n.startswith("LLM composition rejected"))
    assert "/etc/passwd" in rejected and "outside the input/output folders" in rejected
    assert any(f.endswith(".mp4") for f in state["files"])
    graph = state["graph"]
    assert [n["inputs"]["text"] for n in graph.values() if n["class_type"] == "AnimStudio_BurnCaption"] == ["Ciao"]
    # With no floor (a GIF of a clip that was not given) the run stops with both reasons.
    state = run_director("turn this clip into a GIF", _ctx(tmp_path, EmbeddedEngine(), ScriptedBackend(_by_schema(bad)),
                                                           name="r2"), run_id="r2")
    assert state["status"] == "invalid"
    assert "LLM composition rejected" in state["message"] and "needs an input video" in state["message"]


def test_the_keyword_composer_turns_a_clip_into_a_gif_without_an_llm(tmp_path, studio_dirs):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from film import make_film

    make_film(studio_dirs["input"] / "clip.mp4", scenes=1, seconds_per_scene=1.0)
    ctx = _ctx(tmp_path, EmbeddedEngine(), None, max_iterations=1)
    state = run_director("turn this clip into a GIF, slowed down", ctx, run_id="g1", inputs=["clip.mp4"])
    assert state["status"] == "approved" and state["recipe"] == "composed_graph", state.get("message")
    classes = [n["class_type"] for n in state["graph"].values()]
    assert classes == ["AnimStudio_LoadVideo", "AnimStudio_SlowMotion", "AnimStudio_SaveVideo"]
    (gif,) = [f for f in state["files"] if f.endswith(".gif")]
    from PIL import Image

    with Image.open(gif) as img:
        assert img.n_frames >= 20  # 12 frames slowed to half speed


# ---------------------------------------------------------------- LoRA dataset
def test_lora_dataset_recipe_curates_a_film_and_reads_the_summary(tmp_path, studio_dirs):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from film import make_film

    make_film(studio_dirs["input"] / "film.mp4", scenes=2, seconds_per_scene=1.0, cast=(("giulia",),))
    ctx = _ctx(tmp_path, EmbeddedEngine(), None, max_iterations=2)
    state = run_director("prepare a LoRA dataset for Giulia from this clip", ctx, run_id="d1", inputs=["film.mp4"])
    assert state["recipe"] == "lora_dataset_curate" and state["brief"]["characters"] == ["giulia"]
    assert len(state["iterations"]) == 2, state["iterations"][0].get("evaluation")
    first, second = state["iterations"]
    summary = json.loads(Path(next(f for f in first["execution"]["files"] if "summary" in f)).read_text())
    assert summary["character"] == "giulia" and summary["target_range"] == [200, 500]
    # A 2-second film cannot fill a 200-image dataset: the evaluator says so, and asks for denser sampling.
    note = next(n for n in first["evaluation"]["notes"] if n.startswith("dataset:"))
    assert f"kept {summary['kept']} of {summary['measured']}" in note and "below the 200-500 target" in note
    assert first["evaluation"]["metrics"]["report.dataset_fill"] == pytest.approx(summary["kept"] / 200)
    assert first["slots"]["frames_per_scene"] == 8 and second["slots"]["frames_per_scene"] == 16
    second_summary = json.loads(Path(next(f for f in second["execution"]["files"] if "summary" in f)).read_text())
    assert second_summary["measured"] > summary["measured"]
    assert state["status"] == "budget"
    kept_images = [p for p in (tmp_path / "run" / "iter-1" / "datasets").rglob("*") if p.suffix in (".png", ".jpg")]
    assert len(kept_images) >= summary["kept"] > 0


# ---------------------------------------------------------------- analyse inputs
def test_a_vision_backend_sees_sampled_frames_and_the_plan_uses_what_it_saw(tmp_path, studio_dirs):
    import sys

    from animation_studio.agent.director.graph import run_record
    from animation_studio.agent.llm import LLMError, ScriptedBackend

    sys.path.insert(0, str(Path(__file__).parent))
    from film import make_film

    make_film(studio_dirs["input"] / "ocean.mp4", scenes=2, seconds_per_scene=1.0)
    seen = {"subjects": ["luca", "giulia"], "setting": "Portorosso harbour at sunset", "action": "walking past",
            "mood": "playful", "faces_visible": "yes"}
    backend = ScriptedBackend(lambda messages, schema: seen if schema and "faces_visible" in schema["properties"]
                              else LLMError("scripted: no answer"))
    ctx = _ctx(tmp_path, EmbeddedEngine(), backend, name="a1", fail_after="build")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run_director("funny parody of Luca's first ocean scene", ctx, run_id="a1", inputs=["ocean.mp4"])
    state = saved_state(tmp_path / "a1", "a1")
    (call,) = [c for c in backend.calls if c["images"]]
    assert 1 <= len(call["images"]) <= 4 and all(img.startswith(b"\x89PNG") for img in call["images"])
    assert state["analysis"]["ocean.mp4"]["vision"]["setting"] == "Portorosso harbour at sunset"
    assert run_record(state)["analysis"]["ocean.mp4"]["vision"]["faces_visible"] == "yes"
    # Used by the plan: the brief's empty setting and the parody caption come from what the analyst saw.
    assert state["brief"]["setting"] == "Portorosso harbour at sunset" and state["brief_source"]["setting"] == "vision"
    assert state["recipe"] == "parody_video_face"
    assert state["slots"]["caption"] == "Meanwhile, portorosso harbour at sunset..."


def test_a_backend_that_cannot_see_is_not_sent_images(tmp_path, studio_dirs):
    from PIL import Image

    Image.new("RGB", (64, 48), "red").save(studio_dirs["input"] / "ref.png")
    backend = FakeBackend()  # no supports_images: a text-only model
    ctx = _ctx(tmp_path, EmbeddedEngine(), backend, name="a2", fail_after="plan")
    with pytest.raises(RuntimeError):
        run_director(STUDIO["character_image"], ctx, run_id="a2", inputs=["ref.png"])
    state = saved_state(tmp_path / "a2", "a2")
    assert state["analysis"]["ref.png"] == {"kind": "image", "width": 64, "height": 48}
    assert not any(images for _, _, images in backend.calls)


# ---------------------------------------------------------------- image evaluation
def _sprite_on(name, background, flip=False):
    import sys

    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).parent))
    from film import character_sprite

    sprite = character_sprite(name).resize((136, 200))
    if flip:
        sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
    canvas = Image.new("RGB", (256, 256), background)
    canvas.paste(sprite, (60, 30), sprite)
    return np.asarray(canvas)


def _save(array, path):
    from PIL import Image

    Image.fromarray(array).save(path)
    return str(path)


def test_character_image_evaluation_scores_likeness_against_the_references(tmp_path, studio_dirs):
    from animation_studio.agent.director.evaluator import evaluate

    brief, _ = keyword_brief(STUDIO["character_image"])
    recipe = R.RECIPES["character_image_sdxl"]
    slots = {**recipe.defaults(), "cfg": 7.0}
    luca = _save(_sprite_on("luca", (120, 180, 90)), tmp_path / "luca.png")
    giulia = _save(_sprite_on("giulia", (120, 180, 90)), tmp_path / "giulia.png")
    # No reference images yet: likeness is not measured, and the evaluation says why.
    missing = evaluate([luca], brief, recipe, slots)
    assert "likeness" not in missing["metrics"]
    assert any(n.startswith("likeness not measured") and "luca_front.png" in n for n in missing["notes"])
    # luca.yaml names luca_front.png and luca_side.png; found in the input folder.
    _save(_sprite_on("luca", (255, 255, 255)), studio_dirs["input"] / "luca_front.png")
    _save(_sprite_on("luca", (255, 255, 255), flip=True), studio_dirs["input"] / "luca_side.png")
    right, wrong = evaluate([luca], brief, recipe, slots), evaluate([giulia], brief, recipe, slots)
    assert "likeness" in right["metrics"] and "likeness" in wrong["metrics"], (right["notes"], wrong["notes"])
    assert right["metrics"]["likeness"] > wrong["metrics"]["likeness"] + 0.1
    assert right["metrics"]["likeness_path"] == "stylized"  # toon sprites: no real face for dlib/ArcFace
    assert any("via the stylized path" in n and "2 reference image(s)" in n for n in right["notes"])
    assert right["score"] > wrong["score"]
    # An off-model image gets the recipe's concrete edit: follow the prompt more.
    cfg = {e["slot"]: e for e in wrong["edits"]}["cfg"]
    assert cfg["value"] == 8.0 and "off-model" in cfg["reason"] and "cfg" not in {e["slot"] for e in right["edits"]}


def test_character_image_evaluation_asks_the_vision_rubric_with_the_images(tmp_path, studio_dirs):
    from animation_studio.agent.director.evaluator import evaluate
    from animation_studio.agent.llm import ScriptedBackend

    brief, _ = keyword_brief(STUDIO["character_image"])
    image = _save(_sprite_on("luca", (120, 180, 90)), tmp_path / "luca.png")
    backend = ScriptedBackend([{"scores": {"likeness": 0.8, "pose": 0.4, "background": 0.2, "expression": 0.6,
                                           "style": 0.9, "made_up": 0.1}, "feedback": ["no sea in the background"]}])
    recipe = R.RECIPES["character_image_prompt"]
    result = evaluate([image], brief, recipe, recipe.defaults(), LLMCaller(backend))
    (call,) = backend.calls
    assert len(call["images"]) == 1 and call["images"][0] == Path(image).read_bytes()
    assert "likeness, pose, background, expression, style" in call["messages"][-1]["content"]
    assert set(result["vision"]) == {"likeness", "pose", "background", "expression", "style"}  # not made_up
    assert result["score"] == pytest.approx(0.5 * result["objective"] + 0.5 * 0.58, abs=1e-3)
    assert "no sea in the background" in result["notes"]


def test_pose_accuracy_is_measured_when_a_pose_control_was_used(tmp_path, studio_dirs):
    from animation_studio.agent.director.evaluator import evaluate
    from animation_studio.nodes.image import control

    photo = _sprite_on("luca", (120, 180, 90))
    try:
        from skimage import data

        photo = data.astronaut()
    except ImportError:
        pass
    try:
        keypoints = control.pose_keypoints(photo)
        detector = None
    except Exception as exc:  # noqa: BLE001 - MediaPipe missing or broken in this environment
        keypoints, detector = [[100.0, 50.0, 0.9]] * 18, exc
    image = _save(photo, tmp_path / "out.png")
    pose = tmp_path / "pose.txt"  # what a recipe with a pose control saves: PoseSkeleton's keypoints_json
    pose.write_text(json.dumps({"format": "openpose18", "names": control.OPENPOSE_NAMES, "keypoints": keypoints}))
    brief, _ = keyword_brief(STUDIO["character_image"])
    recipe = R.RECIPES["character_image_sdxl"]
    result = evaluate([image, str(pose)], brief, recipe, recipe.defaults())
    if detector is None:
        assert result["metrics"]["pose_accuracy"] == 1.0  # the output holds exactly the control pose
        assert any(n.startswith("pose accuracy 1.00") for n in result["notes"])
    else:
        assert "pose_accuracy" not in result["metrics"]
        assert any(n.startswith("pose accuracy not measured") and type(detector).__name__ in n
                   for n in result["notes"])


def test_voice_run_reports_speaker_similarity_and_duration(tmp_path, studio_dirs):
    ctx = _ctx(tmp_path, EmbeddedEngine(), max_iterations=1)
    state = run_director(STUDIO["character_voice"], ctx, run_id="v1")
    metrics = state["iterations"][0]["evaluation"]["metrics"]
    assert 0.0 < metrics["report.speaker.similarity"] <= 1.0
    assert metrics["duration_s"] > 0.3
    assert any(f.endswith(".wav") for f in state["files"])
