// Animation AI Studio — browser extension.
// A "Director" sidebar tab (intent in, live plan/score log out, generated graph onto the canvas)
// and audio/video previews on the pack's output nodes.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const DIRECTOR_NODE = "AnimStudio_LLMDirector";
// The Director node's one message (nodes/director.py DIRECTOR_EVENT); its detail:
// {run_id, node, stage: plan|brief|graph|evaluate|done, iteration, text, score?, scores?, edits?, graph?}
const EVENT = "animation_studio.director";
const state = { lastGraph: null, lastRun: null, log: [], listeners: new Set() };

function viewUrl(entry) {
  const q = new URLSearchParams({ filename: entry.filename, subfolder: entry.subfolder || "", type: entry.type || "output" });
  return api.apiURL(`/view?${q}`);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") Object.assign(node.style, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function record(entry) {
  state.log.push(entry);
  if (entry.graph) state.lastGraph = entry.graph;
  if (entry.run_id) state.lastRun = entry.run_id;
  for (const fn of state.listeners) fn(entry);
}

function describe(entry) {
  const it = entry.iteration != null ? `#${entry.iteration} ` : "";
  let line = `${it}${entry.stage || "info"}: ${entry.text || ""}`;
  // An evaluation carries its metrics as an object; the final verdict carries the score of each iteration as a list.
  if (entry.scores && !Array.isArray(entry.scores)) {
    line += "  [" + Object.entries(entry.scores).map(([k, v]) => `${k}=${typeof v === "number" ? v.toFixed(2) : v}`).join(" ") + "]";
  }
  return line;
}

// The Director's graphs carry expansion ids ("1.it2.3"); the canvas wants plain numbers.
function renumberGraph(graph) {
  const ids = Object.fromEntries(Object.keys(graph).map((id, i) => [id, String(i + 1)]));
  const out = {};
  for (const [id, node] of Object.entries(graph)) {
    const inputs = {};
    for (const [name, value] of Object.entries(node.inputs || {})) {
      const isLink = Array.isArray(value) && value.length === 2 && String(value[0]) in ids && Number.isInteger(value[1]);
      inputs[name] = isLink ? [ids[String(value[0])], value[1]] : value;
    }
    out[ids[id]] = { ...node, inputs };
  }
  return out;
}

async function buildDirectorPrompt(form) {
  const res = await api.fetchApi(`/object_info/${DIRECTOR_NODE}`);
  const info = (await res.json())[DIRECTOR_NODE];
  if (!info) throw new Error(`${DIRECTOR_NODE} is not installed on this server`);
  const inputs = {};
  for (const section of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(info.input[section] || {})) {
      const [type, cfg = {}] = spec;
      if (name in form && form[name] !== "") inputs[name] = form[name];
      else if (section === "required" && cfg.default !== undefined) inputs[name] = cfg.default;
      else if (section === "required" && Array.isArray(type)) inputs[name] = type[0];
      else if (section === "required" && type === "COMBO") inputs[name] = (cfg.options || [])[0];
    }
  }
  const prompt = { director: { class_type: DIRECTOR_NODE, inputs } };
  if (!info.output_node) {
    const slot = Math.max(0, (info.output || []).indexOf("STRING"));
    prompt.report = { class_type: "AnimStudio_ShowJSON", inputs: { text: ["director", slot] } };
  }
  return prompt;
}

// loadApiJson arranges the nodes but leaves the view where it was; frame them all (scale at most 1)
// in the part of the canvas that this panel does not cover (the sidebar lies over the canvas).
function showAllNodes(panel, margin = 40) {
  const nodes = app.graph?.nodes || [];
  const ds = app.canvas?.ds;
  if (!nodes.length || !ds) return;
  const area = app.canvas.canvas.getBoundingClientRect();
  const left = Math.max(0, (panel?.getBoundingClientRect().right ?? area.left) - area.left);
  const xs = nodes.flatMap((n) => [n.pos[0], n.pos[0] + n.size[0]]);
  const ys = nodes.flatMap((n) => [n.pos[1] - 30, n.pos[1] + n.size[1]]); // 30: the title bar above pos
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const top = 90; // the floating workflow name and Run bar
  const scale = Math.min(1, (area.width - left - 2 * margin) / (maxX - minX), (area.height - top - 2 * margin) / (maxY - minY));
  ds.scale = scale;
  ds.offset = [(left + margin) / scale - minX, (top + margin) / scale - minY];
  app.canvas.setDirty(true, true);
}

function renderPanel(root) {
  root.innerHTML = "";
  const intent = el("textarea", { rows: 4, placeholder: "e.g. Generate Luca saying 'Silenzio, Bruno!' with determination", "data-testid": "as-intent", style: { width: "100%" } });
  const character = el("select", { "data-testid": "as-character" }, el("option", { value: "" }, "(from the intent)"));
  const llm = el("input", { value: "", list: "as-llm-choices", placeholder: "none | local | ollama:MODEL | openai:URL#MODEL | scripted:FILE.json", "data-testid": "as-llm", style: { width: "100%" } });
  const llmChoices = el("datalist", { id: "as-llm-choices" }, ...["none", "local", "ollama:qwen2.5vl", "openai:http://127.0.0.1:8000/v1#MODEL"].map((v) => el("option", { value: v })));
  const iterations = el("input", { type: "number", min: 1, max: 5, value: 2, "data-testid": "as-iterations", style: { width: "4em" } });
  const approve = el("input", { type: "number", min: 0, max: 1, step: 0.05, value: 0.7, "data-testid": "as-approve", style: { width: "5em" } });
  const inputFiles = el("textarea", { rows: 2, placeholder: "input-folder files, one a line (video, image, audio)", "data-testid": "as-inputs", style: { width: "100%" } });
  const log = el("pre", { "data-testid": "as-log", style: { whiteSpace: "pre-wrap", maxHeight: "50vh", overflow: "auto", fontSize: "12px", background: "rgba(0,0,0,.25)", padding: "6px" } });
  const status = el("div", { "data-testid": "as-status" }, "idle");
  const show = (entry) => { log.textContent += describe(entry) + "\n"; log.scrollTop = log.scrollHeight; status.textContent = entry.stage || "running"; };
  state.log.forEach(show);
  state.listeners.clear();
  state.listeners.add(show);

  api.fetchApi("/animation_studio/characters").then((r) => r.json()).then((data) => {
    for (const c of data.characters || []) character.append(el("option", { value: c.name }, c.display_name || c.name));
  }).catch(() => {});

  const run = el("button", { "data-testid": "as-run", onclick: async () => {
    try {
      const prompt = await buildDirectorPrompt({ intent: intent.value, character: character.value, llm: llm.value, max_iterations: Number(iterations.value),
        approve_score: Number(approve.value), input_files: inputFiles.value });
      const res = await api.fetchApi("/prompt", { method: "POST", body: JSON.stringify({ prompt, client_id: api.clientId }) });
      const body = await res.json();
      if (!res.ok) throw new Error(JSON.stringify(body.error || body));
      record({ stage: "queued", text: `prompt ${body.prompt_id}` });
    } catch (err) {
      record({ stage: "error", text: String(err.message || err) });
    }
  } }, "Direct");
  const load = el("button", { "data-testid": "as-load", onclick: async () => {
    if (!state.lastGraph) return record({ stage: "error", text: "no generated graph yet" });
    await app.loadApiJson(renumberGraph(state.lastGraph), `director-${state.lastRun || "graph"}`);
    setTimeout(() => showAllNodes(root), 300); // after the frontend has restored the new tab's saved view
  } }, "Load graph on canvas");
  const save = el("button", { "data-testid": "as-save", onclick: async () => {
    const { workflow } = await app.graphToPrompt();
    const name = `workflows/animation_studio_${state.lastRun || Date.now()}.json`;
    const res = await api.storeUserData(name, workflow, { overwrite: false, stringify: true, throwOnError: false });
    record({ stage: res && res.status === 409 ? "error" : "saved", text: res && res.status === 409 ? `${name} exists; not overwritten` : name });
  } }, "Save as workflow");

  root.append(
    el("div", { style: { display: "flex", flexDirection: "column", gap: "6px", padding: "8px" } },
      el("b", {}, "LLM Director"), intent,
      el("label", {}, "Character ", character),
      el("label", {}, "LLM ", llm), llmChoices,
      el("label", {}, "Inputs ", inputFiles),
      el("div", { style: { display: "flex", gap: "12px" } },
        el("label", {}, "Max iterations ", iterations), el("label", {}, "Approve at ", approve)),
      el("div", { style: { display: "flex", gap: "4px", flexWrap: "wrap" } }, run, load, save),
      status, log));
}

// The pack's output nodes report files as ui.audio (SaveAudio) and ui.videos / ui.gifs (SaveVideo, the
// VideoHelperSuite convention, which other video tools also read); ui.video is accepted too.
function mediaEntries(message) {
  const seen = new Set();
  const pick = (keys, kind) => keys.flatMap((k) => message[k] || []).filter((e) => {
    const key = `${e.type}/${e.subfolder}/${e.filename}`;
    if (!e.filename || seen.has(key)) return false;
    seen.add(key);
    return true;
  }).map((entry) => ({ entry, kind }));
  return [...pick(["videos", "video", "gifs"], "video"), ...pick(["audio"], "audio")];
}

function addMediaPreview(node, message) {
  const entries = mediaEntries(message);
  if (!entries.length) return;
  const media = entries.map(({ entry, kind }) =>
    el(kind, { src: viewUrl(entry), controls: "", loop: "", "data-filename": entry.filename, style: { width: "100%" } }));
  const widget = node.widgets?.find((w) => w.name === "animation_studio_preview");
  if (widget) { widget.element.replaceChildren(...media); return; }
  node.addDOMWidget("animation_studio_preview", "preview", el("div", { class: "animation-studio-preview" }, ...media), { serialize: false });
}

app.registerExtension({
  name: "animation_studio.director",
  async setup() {
    api.addEventListener(EVENT, (event) => record(event.detail || {}));
    // A Director that fails (bad intent, no recipe, LLM down) says why in the panel too.
    api.addEventListener("execution_error", (event) => {
      const d = event.detail || {};
      if (d.node_type === DIRECTOR_NODE) record({ stage: "error", text: d.exception_message || "the Director failed" });
    });
    const tab = { id: "animation-studio-director", icon: "pi pi-video", title: "Director", tooltip: "Animation Studio — LLM Director", type: "custom", render: renderPanel };
    if (app.extensionManager?.registerSidebarTab) app.extensionManager.registerSidebarTab(tab);
    window.animationStudio = { state, buildDirectorPrompt, record, renumberGraph };
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name?.startsWith("AnimStudio_")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (message) addMediaPreview(this, message);
    };
  },
});
