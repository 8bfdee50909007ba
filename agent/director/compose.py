"""Free composition: a small graph over allow-listed nodes when no recipe fits the intent.

"Make a 2-second gradient title card that says Ciao", "turn this clip into a GIF": no recipe covers
these, but a few nodes do. The tool_executor LLM is asked for at most MAX_NODES nodes against a JSON
schema built from the live catalog (class names as an enum, bounded strings), and its graph goes
through the same validate -> repair -> security path as a recipe's. Without an LLM (or when its graph
is rejected), a deterministic composer for a few simple verbs (save as GIF, slow down, add a caption,
add music, title card) is the floor, as the keyword brief is for the planner.
"""
from __future__ import annotations

import json
import re

from ..catalog import Catalog
from .builder import GraphBuilder, Node
from .security import allowed_classes, check_graph
from .state import Brief

MAX_NODES = 12
# Nodes a composed graph may not use: the Director's own (no recursion through a generated graph).
NOT_COMPOSABLE = ("AnimStudio_LLMDirector", "AnimStudio_DirectorPlan")
VERBS = {
    "gif": ("gif", "animated gif"),
    "slow": ("slow down", "slowed down", "slow it down", "slower", "half speed", "slow-mo", "slowmo"),
    "caption": ("caption", "subtitle", "says", "saying", "that reads", "with the text", "title card", "text card"),
    "music": ("add music", "music", "soundtrack", "background music"),
    "card": ("title card", "text card", "gradient", "card"),
}
MUSIC_MOODS = {"funny": "comedic", "happy": "comedic", "sad": "sad", "scared": "tense", "dramatic": "tense",
               "excited": "heroic", "determined": "heroic"}
COLOURS = {"neutral": ("#7ec8e3", "#f6d7a7"), "happy": ("#ffd166", "#fff1c1"), "sad": ("#4b6584", "#a5b1c2"),
           "excited": ("#ffb347", "#ffe08a"), "dramatic": ("#2c3e50", "#c0392b"), "funny": ("#55efc4", "#ffeaa7")}


def composable(catalog: Catalog) -> list[str]:
    """Allow-listed classes of the live catalog a composed graph may use."""
    return sorted(n for n in allowed_classes(catalog) & set(catalog.names()) if n not in NOT_COMPOSABLE)


def compose_schema(catalog: Catalog) -> dict:
    """The bounded JSON schema the tool_executor answers against: <= MAX_NODES nodes of known classes."""
    literal = [{"type": "string", "maxLength": 300}, {"type": "number"}, {"type": "boolean"},
               {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": ["string", "integer"]}}]
    node = {"type": "object", "properties": {
        "id": {"type": "string", "maxLength": 8},
        "class_type": {"type": "string", "enum": composable(catalog)},
        "inputs": {"type": "object", "maxProperties": 12, "additionalProperties": {"anyOf": literal}}},
        "required": ["id", "class_type", "inputs"], "additionalProperties": False}
    return {"type": "object", "properties": {"nodes": {"type": "array", "minItems": 1, "maxItems": MAX_NODES,
                                                        "items": node}},
            "required": ["nodes"], "additionalProperties": False}


def catalog_digest(catalog: Catalog) -> str:
    """One line per composable class: inputs with their types/limits, and outputs (what the LLM may wire)."""
    lines = []
    for name in composable(catalog):
        spec = catalog[name]
        ins = ", ".join(f"{i.name}: {i.describe()}" for i in spec.inputs.values() if i.section != "hidden")
        outs = ", ".join(f"{k}:{t}" for k, t in zip(spec.output_names, spec.outputs))
        lines.append(f"{name}({ins}) -> [{outs}]" + (" OUTPUT" if spec.output_node else ""))
    return "\n".join(lines)


def to_graph(nodes: list[dict], prefix: str = "") -> dict:
    """[{id, class_type, inputs}] -> an API graph; links [id, index] get the same id prefix."""
    graph = {}
    ids = {str(n.get("id")) for n in nodes if isinstance(n, dict)}
    for n in nodes[:MAX_NODES]:
        if not isinstance(n, dict):
            continue
        inputs = {}
        for key, value in (n.get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in ids:
                value = [prefix + str(value[0]), int(value[1])]
            inputs[str(key)] = value
        graph[prefix + str(n.get("id"))] = {"class_type": str(n.get("class_type")), "inputs": inputs}
    return graph


# ---------------------------------------------------------------- the deterministic floor
def _has(text: str, words) -> bool:
    return any(re.search(r"\b" + re.escape(w) + r"\b", text) for w in words)


def caption_text(intent: str, brief: Brief) -> str:
    """The words to show: a quoted line, else what follows 'says' / 'reads' / 'caption'."""
    if brief.dialogue:
        return brief.dialogue
    m = re.search(r"\b(?:says|saying|reads|with the text|caption(?:ed)?|subtitle)\s*:?\s*[\"'“]?([^\"'”.,;!?]{1,80})",
                  intent, re.I)
    return m.group(1).strip() if m else ""


def wanted_verbs(intent: str) -> list[str]:
    lowered = intent.lower()
    return [verb for verb, words in VERBS.items() if _has(lowered, words)]


def keyword_composition(intent: str, brief: Brief, inputs: dict) -> tuple[list[dict] | None, str]:
    """Nodes for the simple verbs, or None and why not."""
    verbs = wanted_verbs(intent)
    if not verbs:
        return None, "no verb the deterministic composer knows (gif, slow down, caption, music, title card)"
    nodes: list[dict] = []

    def add(class_type: str, **inputs) -> list:
        node_id = str(len(nodes) + 1)
        nodes.append({"id": node_id, "class_type": class_type, "inputs": inputs})
        return [node_id, 0]

    duration = brief.duration_s or 2.0
    if inputs.get("video"):
        video = add("AnimStudio_LoadVideo", video=inputs["video"][0], max_size=480)
    elif inputs.get("image"):
        image = add("AnimStudio_LoadImage", image=inputs["image"][0])
        video = add("AnimStudio_FreezeFrame", video=add("AnimStudio_ImagesToVideo", images=image, fps=12.0), at=0.0,
                    hold=duration, zoom=1.0, zoom_time=0.0, audio_mode="mute")
    elif "card" in verbs or "caption" in verbs:
        top, bottom = COLOURS.get(brief.emotion, COLOURS["neutral"])
        card = add("AnimStudio_SolidImage", width=512, height=288, top_color=top, bottom_color=bottom)
        video = add("AnimStudio_FreezeFrame", video=add("AnimStudio_ImagesToVideo", images=card, fps=12.0), at=0.0,
                    hold=duration, zoom=1.0, zoom_time=0.0, audio_mode="mute")
    else:
        return None, f"'{', '.join(verbs)}' needs an input video or image (--input)"
    if "slow" in verbs:
        video = add("AnimStudio_SlowMotion", video=video, factor=0.5, mode="blend", audio_mode="stretch")
    text = caption_text(intent, brief)
    if "caption" in verbs or ("card" in verbs and text):
        video = add("AnimStudio_BurnCaption", video=video, text=text or "Meanwhile...", position="center")
    if "music" in verbs:
        music = add("AnimStudio_MusicBed", seconds=max(duration, 2.0) if not inputs.get("video") else 10.0,
                    mood=MUSIC_MOODS.get(brief.emotion, "comedic"))
        video = add("AnimStudio_MuxAudio", video=video, audio=music)
    add("AnimStudio_SaveVideo", video=video, filename_prefix="director/composed",
        format="gif" if "gif" in verbs else "mp4")
    return nodes, f"deterministic composition for: {', '.join(verbs)}"


# ---------------------------------------------------------------- the LLM, checked
def precheck(nodes: list[dict], catalog: Catalog) -> list[str]:
    """Why these nodes cannot run (after the usual repair), or []: the same checks the loop applies."""
    from .repair import validate_and_repair

    if not nodes:
        return ["the composed graph has no nodes"]
    outcome = validate_and_repair(to_graph(nodes), catalog)
    return check_graph(outcome.graph, catalog) + outcome.errors  # the security reasons first: they matter most


def fill_composition(recipe, brief: Brief, ctx: dict, llm, slots: dict) -> tuple[dict, list[str]]:
    """Slots {"nodes": [...]}: the LLM's graph when it passes validation (+repair) and security, else the floor."""
    from .planner import IntentError

    catalog: Catalog = ctx["catalog"]
    notes: list[str] = []
    floor, why_floor = keyword_composition(ctx.get("intent", ""), brief, ctx.get("inputs", {}))
    answer = llm.ask("tool_executor",
                     "You compose a small ComfyUI workflow from the listed nodes only. Each node has an id, a "
                     "class_type and inputs; an input is a literal or a link [node_id, output_index]. End with an "
                     f"OUTPUT node. At most {MAX_NODES} nodes. Answer with JSON only.",
                     f"Request: {ctx.get('intent', '')}\nBrief: {brief.model_dump_json()}\n"
                     f"Input files (names to use as they are): {json.dumps(ctx.get('inputs', {}))}\n"
                     f"Nodes:\n{catalog_digest(catalog)}", compose_schema(catalog), max_tokens=900)
    if answer and isinstance(answer.get("nodes"), list):
        problems = precheck(answer["nodes"], catalog)
        if not problems:
            return {"nodes": answer["nodes"][:MAX_NODES]}, ["composed by the LLM from the live catalog"]
        notes.append("LLM composition rejected: " + "; ".join(problems)[:800])
    if floor is None:
        raise IntentError("no recipe fits and no graph could be composed ("
                          + "; ".join(notes + [why_floor]) + ")")
    return {"nodes": floor}, notes + [why_floor]


def build_composition(b: GraphBuilder, slots: dict, ctx: dict) -> dict:
    """Put the composed nodes into the builder as they are (unknown classes or inputs are the validator's to
    report and the repair's to fix); the first IMAGE / AUDIO output is what the in-node evaluator scores."""
    graph = to_graph(slots.get("nodes") or [], b.prefix)
    primary: dict = {}
    for node_id, node in graph.items():
        b.nodes[node_id] = Node(b, node_id, node["class_type"], node["inputs"])
        spec = b.catalog.get(node["class_type"])
        for index, kind in enumerate(spec.outputs if spec else ()):
            if kind == "IMAGE" and "image" not in primary:
                primary["image"] = [node_id, index]
            if kind == "AUDIO" and "audio" not in primary:
                primary["audio"] = [node_id, index]
    return primary
