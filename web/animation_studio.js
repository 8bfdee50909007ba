// Animation AI Studio — browser extension.
// A "Director" sidebar tab built from the frontend's own pieces (its sidebar tab API, PrimeVue-styled
// buttons and inputs through their classes and CSS variables, its toasts): intent in; live progress, the
// plan as a list of operations, every decision and check, and previews of the result out; the generated
// graph onto the canvas laid out by the pack (POST /animation_studio/layout) and framed; "save as workflow"
// that never overwrites. Also audio/video previews on the pack's output nodes.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const DIRECTOR_NODE = "AnimStudio_LLMDirector";
// The Director node's one message (agent/director/node.py DIRECTOR_EVENT); its detail:
// {run_id, node, stage: plan|check|refine|graph|done|..., iteration, text, plan?: [{op, params}], graph?, status?}
const EVENT = "animation_studio.director";
const TAB_ID = "animation-studio-director";
const STAGE_ICONS = { queued: "pi-send", plan: "pi-list", refine: "pi-wrench", graph: "pi-sitemap", check: "pi-verified",
  evaluate: "pi-chart-bar", done: "pi-flag", error: "pi-times-circle", saved: "pi-save", loaded: "pi-th-large" };

const state = { lastGraph: null, lastRun: null, lastPlan: null, promptId: null, log: [], media: [], progress: null,
  listeners: new Set() };

function viewUrl(entry) {
  const q = new URLSearchParams({ filename: entry.filename, subfolder: entry.subfolder || "", type: entry.type || "output" });
  return api.apiURL(`/view?${q}`);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "style") Object.assign(node.style, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function toast(severity, summary, detail) {
  app.extensionManager?.toast?.add({ severity, summary, detail, life: severity === "error" ? 8000 : 4000 });
}

function notify() { for (const fn of state.listeners) fn(); }

function record(entry) {
  state.log.push(entry);
  if (entry.graph) state.lastGraph = entry.graph;
  if (entry.run_id) state.lastRun = entry.run_id;
  if (Array.isArray(entry.plan)) state.lastPlan = entry.plan;
  if (entry.stage === "done") {
    const ok = /^approved/.test(entry.status || entry.text || "");
    toast(ok ? "success" : "warn", ok ? "Director: approved" : "Director: finished", entry.text || "");
  }
  if (entry.stage === "error") toast("error", "Director", entry.text || "failed");
  notify();
}

// {op, params} -> "retime: speed 0.25"; whatever list arrives is shown, unknown shapes as JSON.
function describeOp(op) {
  if (!op || typeof op !== "object") return String(op);
  const name = op.op ?? op.name ?? "?";
  const params = op.params && typeof op.params === "object" ? Object.entries(op.params)
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : v}`) : [];
  return params.length ? `${name}: ${params.join(" · ")}` : String(name);
}

async function buildDirectorPrompt(form) {
  const res = await api.fetchApi(`/object_info/${DIRECTOR_NODE}`);
  const info = (await res.json())[DIRECTOR_NODE];
  if (!info) throw new Error(`${DIRECTOR_NODE} is not installed on this server`);
  const inputs = {};
  for (const section of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(info.input[section] || {})) {
      const [type, cfg = {}] = spec;
      if (cfg.forceInput) continue;
      if (name in form && form[name] !== "" && form[name] !== undefined) inputs[name] = form[name];
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

// Frame every node in the part of the canvas the panel does not cover, at a scale a person can read.
function showAllNodes(panel, margin = 40, minScale = 0.6) {
  const nodes = app.graph?.nodes || [];
  const ds = app.canvas?.ds;
  if (!nodes.length || !ds) return;
  const area = app.canvas.canvas.getBoundingClientRect();
  const left = panel ? Math.max(0, panel.getBoundingClientRect().right - area.left) : 0;
  const xs = nodes.flatMap((n) => [n.pos[0], n.pos[0] + n.size[0]]);
  const ys = nodes.flatMap((n) => [n.pos[1] - 30, n.pos[1] + n.size[1]]); // 30: the title bar above pos
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const top = 90; // the floating workflow name and Run bar
  const fit = Math.min((area.width - left - 2 * margin) / (maxX - minX), (area.height - top - 2 * margin) / (maxY - minY));
  const scale = Math.max(minScale, Math.min(1, fit)); // below 0.6 titles and widgets stop being readable: scroll instead
  ds.scale = scale;
  ds.offset = [(left + margin) / scale - minX, (top + margin) / scale - minY];
  app.canvas.setDirty(true, true);
  // Where the nodes now lie on the page (CSS pixels), e.g. to take a picture of them.
  return { left: area.left + (minX + ds.offset[0]) * scale, top: area.top + (minY + ds.offset[1]) * scale,
    right: area.left + (maxX + ds.offset[0]) * scale, bottom: area.top + (maxY + ds.offset[1]) * scale };
}

async function loadGraphOnCanvas(panel) {
  if (!state.lastGraph) throw new Error("no generated graph yet");
  const graph = renumberGraph(state.lastGraph);
  const res = await api.fetchApi("/animation_studio/layout", { method: "POST", body: JSON.stringify({ graph }) });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `layout failed (${res.status})`);
  const name = `director-${state.lastRun || "graph"}`;
  await app.loadGraphData(body.workflow, true, true, name, { showMissingNodesDialog: false, showMissingModelsDialog: false });
  await new Promise((r) => setTimeout(r, 300)); // after the frontend has restored the new tab's saved view
  showAllNodes(panel);
  record({ stage: "loaded", text: `${Object.keys(graph).length} nodes on the canvas as ${name}` });
}

async function saveAsWorkflow() {
  const { workflow } = await app.graphToPrompt();
  const stem = `animation_studio_${state.lastRun || Date.now()}`;
  // The next free name; the server's overwrite=false still refuses a file that appeared meanwhile (409).
  const taken = new Set((await api.listUserDataFullInfo("workflows")).map((f) => String(f.path).split("/").pop()));
  for (let n = 0; n < 100; n++) {
    const file = n ? `${stem}_${n + 1}.json` : `${stem}.json`;
    if (taken.has(file)) continue;
    const name = `workflows/${file}`;
    const res = await api.storeUserData(name, workflow, { overwrite: false, stringify: true, throwOnError: false });
    if (res && res.status === 409) continue; // exists: never overwritten, try the next free name
    if (res && !res.ok) throw new Error(`saving ${name} failed (${res.status})`);
    record({ stage: "saved", text: name });
    toast("success", "Saved as workflow", name);
    return name;
  }
  throw new Error(`workflows/${stem}*.json: no free name`);
}

// ------------------------------------------------------------------ the panel
const CSS = `
.as-panel{display:flex;flex-direction:column;gap:.75rem;padding:.75rem;height:100%;overflow:auto;box-sizing:border-box;
  color:var(--p-text-color,var(--fg-color));font-size:.875rem}
.as-panel h3{margin:0;font-size:1rem;display:flex;align-items:center;gap:.5rem}
.as-panel label{display:flex;flex-direction:column;gap:.25rem;color:var(--p-text-muted-color,var(--descrip-text))}
.as-panel .as-row{display:flex;gap:.5rem;flex-wrap:wrap;align-items:flex-end}
.as-panel .as-row>label{flex:1}
.as-panel .p-inputtext{width:100%;box-sizing:border-box;font:inherit}
.as-panel .as-section{border:1px solid var(--p-content-border-color,var(--border-color));border-radius:.5rem;padding:.5rem .75rem}
.as-panel .as-section>b{display:block;margin-bottom:.35rem}
.as-panel ol.as-plan{margin:0;padding-left:1.4rem}.as-panel ol.as-plan li{margin:.15rem 0}
.as-panel .as-op{font-weight:600;color:var(--p-primary-color)}
.as-panel ul.as-steps{list-style:none;margin:0;padding:0;max-height:32vh;overflow:auto}
.as-panel ul.as-steps li{display:flex;gap:.5rem;padding:.2rem 0;border-bottom:1px solid var(--p-content-border-color,var(--border-color))}
.as-panel ul.as-steps li .pi{margin-top:.15rem;color:var(--p-primary-color)}
.as-panel ul.as-steps li.as-fail .pi{color:var(--p-red-400,#f87171)}
.as-panel .as-progress{height:.4rem;background:var(--p-content-border-color,#444);border-radius:.2rem;overflow:hidden}
.as-panel .as-progress>div{height:100%;background:var(--p-primary-color);transition:width .2s}
.as-panel .as-media img,.as-panel .as-media video{width:100%;border-radius:.35rem;margin-top:.35rem}
.as-panel .as-media audio{width:100%;margin-top:.35rem}
`;

function renderPanel(root) {
  root.innerHTML = "";
  if (!document.getElementById("as-panel-css")) document.head.append(el("style", { id: "as-panel-css" }, CSS));
  const input = (attrs) => el("input", { class: "p-inputtext p-component", ...attrs });
  const button = (label, icon, attrs, secondary = false) => el("button",
    { class: `p-button p-component p-button-sm${secondary ? " p-button-secondary p-button-outlined" : ""}`, type: "button", ...attrs },
    el("span", { class: `p-button-icon p-button-icon-left pi ${icon}` }), el("span", { class: "p-button-label" }, label));

  const intent = el("textarea", { class: "p-textarea p-inputtext p-component", rows: 3, "data-testid": "as-intent",
    placeholder: "e.g. Luca saying 'Silenzio, Bruno!' with determination" });
  const character = el("select", { class: "p-inputtext p-component", "data-testid": "as-character" }, el("option", { value: "" }, "(from the intent)"));
  const llm = input({ value: "", list: "as-llm-choices", "data-testid": "as-llm", placeholder: "none | local | ollama:MODEL | openai:URL#MODEL" });
  const llmChoices = el("datalist", { id: "as-llm-choices" }, ...["none", "local", "ollama:qwen2.5vl", "openai:http://127.0.0.1:8000/v1#MODEL"].map((v) => el("option", { value: v })));
  const iterations = input({ type: "number", min: 1, max: 5, value: 2, "data-testid": "as-iterations" });
  const inputFiles = el("textarea", { class: "p-textarea p-inputtext p-component", rows: 2, "data-testid": "as-inputs",
    placeholder: "input-folder files, one a line (video, image, audio)" });

  const status = el("div", { "data-testid": "as-status" }, "idle");
  const bar = el("div", { style: { width: "0%" } });
  const progress = el("div", { class: "as-progress", "data-testid": "as-progress" }, bar);
  const plan = el("ol", { class: "as-plan", "data-testid": "as-plan" });
  const steps = el("ul", { class: "as-steps", "data-testid": "as-steps" });
  const media = el("div", { class: "as-media", "data-testid": "as-media" });

  const update = () => {
    const last = state.log[state.log.length - 1];
    status.textContent = last ? `${last.stage || "running"}${last.iteration != null ? ` · iteration ${last.iteration}` : ""}` : "idle";
    const p = state.progress;
    bar.style.width = p && p.max ? `${Math.round((100 * p.value) / p.max)}%` : last?.stage === "done" ? "100%" : "0%";
    plan.replaceChildren(...(state.lastPlan || []).map((op) => {
      const [name, ...rest] = describeOp(op).split(": ");
      return el("li", {}, el("span", { class: "as-op" }, name), rest.length ? `: ${rest.join(": ")}` : "");
    }));
    // One line per event, read as "#2 check: PASS duration: ..." (the browser tier reads them too).
    steps.replaceChildren(...state.log.map((entry) => el("li", { class: /^FAIL\b/.test(entry.text || "") || entry.stage === "error" ? "as-fail" : "" },
      el("i", { class: `pi ${STAGE_ICONS[entry.stage] || "pi-info-circle"}` }),
      el("span", {}, entry.iteration != null ? el("b", {}, `#${entry.iteration} `) : "", `${entry.stage}: ${entry.text || ""}`))));
    steps.scrollTop = steps.scrollHeight;
    media.replaceChildren(...state.media.map(({ entry, kind }) => kind === "image"
      ? el("img", { src: viewUrl(entry), alt: entry.filename, "data-filename": entry.filename })
      : el(kind, { src: viewUrl(entry), controls: "", loop: kind === "video" ? "" : null, "data-filename": entry.filename })));
  };
  state.listeners.clear();
  state.listeners.add(update);
  update();

  api.fetchApi("/animation_studio/characters").then((r) => r.json()).then((data) => {
    for (const c of data.characters || []) character.append(el("option", { value: c.name }, c.display_name || c.name));
  }).catch(() => {});

  const run = button("Direct", "pi-play", { "data-testid": "as-run", onclick: async () => {
    try {
      Object.assign(state, { log: [], media: [], lastPlan: null, lastGraph: null, progress: null });
      const prompt = await buildDirectorPrompt({ intent: intent.value, character: character.value, llm: llm.value,
        max_iterations: Number(iterations.value), input_files: inputFiles.value });
      const res = await api.fetchApi("/prompt", { method: "POST", body: JSON.stringify({ prompt, client_id: api.clientId }) });
      const body = await res.json();
      if (!res.ok) throw new Error(JSON.stringify(body.error || body));
      state.promptId = body.prompt_id;
      record({ stage: "queued", text: `prompt ${body.prompt_id}` });
    } catch (err) {
      record({ stage: "error", text: String(err.message || err) });
    }
  } });
  const guarded = (fn) => async () => { try { await fn(); } catch (err) { record({ stage: "error", text: String(err.message || err) }); } };
  const load = button("Load graph on canvas", "pi-sitemap", { "data-testid": "as-load", onclick: guarded(() => loadGraphOnCanvas(root)) }, true);
  const save = button("Save as workflow", "pi-save", { "data-testid": "as-save", onclick: guarded(saveAsWorkflow) }, true);

  root.append(el("div", { class: "as-panel" },
    el("h3", {}, el("i", { class: "pi pi-video" }), "LLM Director"),
    el("label", {}, "What should the Director make?", intent),
    el("div", { class: "as-row" }, el("label", {}, "Character", character), el("label", { style: { maxWidth: "7rem" } }, "Iterations", iterations)),
    el("label", {}, "LLM", llm), llmChoices,
    el("label", {}, "Inputs", inputFiles),
    el("div", { class: "as-row" }, run, load, save),
    el("div", { class: "as-section" }, el("b", {}, "Progress"), status, progress),
    el("div", { class: "as-section" }, el("b", {}, "Plan"), plan),
    el("div", { class: "as-section" }, el("b", {}, "Decisions and checks"), steps),
    el("div", { class: "as-section" }, el("b", {}, "Result"), media)));
}

// ------------------------------------------------------------------ previews on the pack's output nodes
// Pictures and videos come as ComfyUI's own save nodes send them (ui.images; a video with ui.animated), which
// the frontend previews on any node. Sound comes as ui.audio, which the frontend previews only on its own audio
// nodes, so the pack's SaveAudio gets a player here; the Director panel shows all three.
const VIDEO_FILE = /\.(mp4|webm|mov|mkv)$/i;

function mediaEntries(message, withImages = false) {
  const entries = (key) => (message?.[key] || []).filter((e) => e?.filename);
  return [...entries("audio").map((entry) => ({ entry, kind: "audio" })),
    ...(withImages ? entries("images").map((entry) => ({ entry, kind: VIDEO_FILE.test(entry.filename) ? "video" : "image" })) : [])];
}

function addAudioPreview(node, message) {
  const entries = mediaEntries(message);
  if (!entries.length) return;
  const media = entries.map(({ entry }) =>
    el("audio", { src: viewUrl(entry), controls: "", loop: "", "data-filename": entry.filename, style: { width: "100%" } }));
  const widget = node.widgets?.find((w) => w.name === "animation_studio_preview");
  if (widget) { widget.element.replaceChildren(...media); return; }
  node.addDOMWidget("animation_studio_preview", "preview", el("div", { class: "animation-studio-preview" }, ...media), { serialize: false });
}

app.registerExtension({
  name: "animation_studio.director",
  async setup() {
    api.addEventListener(EVENT, (event) => record(event.detail || {}));
    // Live progress and results of the Director's own prompt (its expansion runs inside it).
    api.addEventListener("progress", ({ detail }) => {
      if (detail?.prompt_id && detail.prompt_id === state.promptId) { state.progress = detail; notify(); }
    });
    api.addEventListener("executed", ({ detail }) => {
      if (!detail?.prompt_id || detail.prompt_id !== state.promptId) return;
      const found = mediaEntries(detail.output, true);
      if (found.length) { state.media.push(...found); notify(); }
    });
    // A Director that fails (bad intent, LLM down) says why in the panel too.
    api.addEventListener("execution_error", (event) => {
      const d = event.detail || {};
      if (d.node_type === DIRECTOR_NODE) record({ stage: "error", text: d.exception_message || "the Director failed" });
    });
    const tab = { id: TAB_ID, icon: "pi pi-video", title: "Director", tooltip: "Animation Studio — LLM Director", type: "custom", render: renderPanel };
    if (app.extensionManager?.registerSidebarTab) app.extensionManager.registerSidebarTab(tab);
    else console.warn("Animation Studio: this ComfyUI frontend has no sidebar tab API, so there is no Director panel; "
      + "update it in ComfyUI's Python: pip install -U comfyui-frontend-package (the nodes work without it)");
    window.animationStudio = { state, buildDirectorPrompt, record, renumberGraph, describeOp, loadGraphOnCanvas, saveAsWorkflow, showAllNodes };
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name?.startsWith("AnimStudio_")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (message) addAudioPreview(this, message);
    };
  },
});
