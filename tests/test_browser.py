"""The browser tier: headless Chromium against a real ComfyUI server with this pack.

Runs only when COMFYUI_PATH points at a ComfyUI checkout and Debian's `chromium`
and `chromedriver` (plus the `selenium` package) are installed; CI has neither, so
it skips there. It checks what a user of the browser UI sees:

* the extension loads with no console error;
* every shipped UI workflow loads with no missing node type, and the frontend's
  own `app.graphToPrompt()` turns it into exactly its `.api.json` twin;
* the Director panel (a sidebar tab) runs an intent and shows its progress, the plan as a list of
  operations, every decision and check, and the result; loads the generated graph on the canvas laid out
  and readable, and saves it as a workflow twice without overwriting; its screenshot goes to
  web/screenshots/director_panel.png (shown in the README) when ANIMATION_STUDIO_UPDATE_SCREENSHOTS is set;
* ComfyUI's Templates browser lists the pack's UI workflows only, each with its thumbnail.

The browser only ever talks to 127.0.0.1: every other host name resolves to
nothing (--host-resolver-rules), so the frontend's calls home fail fast.

The first test here (not marked `browser`) checks the Director's event contract
on the embedded engine, so CI covers the messages the panel consumes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import comfyui_harness  # noqa: E402

REPO = comfyui_harness.REPO_ROOT
WORKFLOWS = REPO / "workflows"  # UI workflows: ComfyUI lists them as the pack's templates
API_WORKFLOWS = WORKFLOWS / "api"  # their API twins (a subfolder: ComfyUI's template scan does not descend)
UI_WORKFLOWS = sorted(WORKFLOWS.glob("*.json"))  # named for a person; extra.animation_studio_api names the twin
PARODY_TITLE = "Parody video, exaggerate the funniest moment"
# The README's screenshot is rewritten only on request, so a test run leaves the checkout clean.
SCREENSHOT = (REPO / "web" / "screenshots" / "director_panel.png" if os.environ.get("ANIMATION_STUDIO_UPDATE_SCREENSHOTS")
              else Path(tempfile.gettempdir()) / "animation_studio_director_panel.png")
TAB_ID = "animation-studio-director"
TITLE_INTENT = "make a 2-second title card that says 'Ciao Portorosso'"

# Console errors that are not the pack's: a fresh ComfyUI user has no user.css, no saved
# workflows/subgraphs/template settings (404s the frontend expects), and no favicon is served.
FRESH_USER_404 = re.compile(r"^http://127\.0\.0\.1:\d+/(favicon\.ico|user\.css|api/userdata(/user\.css|/comfy\.templates\.json|\?dir=))")


def _skip_reason() -> str | None:
    if comfyui_harness.comfyui_path() is None:
        return "COMFYUI_PATH not set (the browser tier needs a ComfyUI checkout)"
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return "chromium and chromedriver not installed (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e .[dev])"
    return None


def browser_tier(test):
    """Marks a test of the browser tier: `-m browser` selects it; it skips where it cannot run."""
    reason = _skip_reason()
    for mark in (pytest.mark.browser, pytest.mark.timeout(600), pytest.mark.skipif(reason is not None, reason=reason or "")):
        test = mark(test)
    return test


def missing_in_comfyui_python(modules: tuple[str, ...]) -> list[str]:
    """Which of these modules ComfyUI's own interpreter cannot import (the pack's extras live in that venv)."""
    import subprocess

    python = comfyui_harness.comfyui_python(comfyui_harness.comfyui_path())
    code = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    found = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True, timeout=60)
    return found.stdout.split()


def unrelated_noise(entry: dict) -> bool:
    """True for a console entry that says nothing about the pack (see FRESH_USER_404 and the blocked hosts)."""
    message = entry.get("message", "")
    if "Failed to load resource" not in message:
        return False
    url = message.split(" ", 1)[0]
    return not url.startswith("http://127.0.0.1:") or bool(FRESH_USER_404.match(url))


def severe_errors(entries: list[dict]) -> list[str]:
    return [e["message"] for e in entries if e.get("level") == "SEVERE" and not unrelated_noise(e)]


def without_meta(graph: dict) -> dict:
    return {str(node_id): {"class_type": node["class_type"], "inputs": node["inputs"]} for node_id, node in graph.items()}


# ---------------------------------------------------------------- the event contract (no browser)
def test_director_events_follow_the_panel_contract(studio_dirs, tmp_path):
    """The Director sends one event name with {run_id, node, stage, iteration, text}, its plan and a graph to load;
    the checks come after the graph ran and the last event says the verdict."""
    from animation_studio.agent.director.node import DIRECTOR_EVENT
    from animation_studio.agent.engine import EmbeddedEngine

    graph = {"1": {"class_type": "AnimStudio_LLMDirector", "inputs": {
        "intent": TITLE_INTENT, "character": "", "llm": "none", "max_iterations": 2}}}
    events = []
    result = EmbeddedEngine().run(graph, run_dir=tmp_path / "run",
                                  on_event=lambda kind, data: events.append(data) if kind == DIRECTOR_EVENT else None)
    assert result.ok, result.message()
    assert events and all({"run_id", "node", "stage", "iteration", "text"} <= set(e) for e in events)
    assert len({e["run_id"] for e in events}) == 1
    plans = [e for e in events if e.get("plan")]
    first = plans[0]["plan"][0] if plans else {}
    assert first.get("op") == "title" and {"text": "Ciao Portorosso", "seconds": 2.0}.items() <= first["params"].items()
    graphs = [e for e in events if e["stage"] == "graph" and e.get("graph")]
    assert [e["iteration"] for e in graphs] == [1]
    assert all(n["class_type"].startswith("AnimStudio_") for n in graphs[0]["graph"].values())
    checks = [e for e in events if e["stage"] == "check"]
    assert checks and all(e["text"].startswith("PASS ") for e in checks)
    done = events[-1]
    assert done["stage"] == "done" and done["status"] == "approved" and done["decisions"]
    assert json.loads(result.values["1"][0][0])["status"] == "approved"


# ---------------------------------------------------------------- the browser tier
@pytest.fixture(scope="module")
def server():
    with comfyui_harness.ComfyUIServer(comfyui_harness.comfyui_path()) as srv:
        # Skip the first-run template gallery, which would cover the canvas.
        request = urllib.request.Request(srv.url + "/settings", method="POST",
                                         data=json.dumps({"Comfy.TutorialCompleted": True}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()
        put_referenced_images(srv.input_dir)
        yield srv


def put_referenced_images(input_dir: Path) -> None:
    """The user's pictures the shipped workflows name (the frontend previews them), as small real PNGs."""
    from PIL import Image

    for api_path in API_WORKFLOWS.glob("*.api.json"):
        for node in json.loads(api_path.read_text(encoding="utf-8")).values():
            value = node["inputs"].get("image")
            if isinstance(value, str) and value.lower().endswith((".png", ".jpg", ".jpeg", ".webp")):
                Image.new("RGB", (64, 64), (200, 120, 60)).save(input_dir / value)


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="as-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1000", f"--user-data-dir={profile}",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(120)
    try:
        driver.get(server.url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if driver.execute_script("return !!(window.app && window.app.graph && window.LiteGraph "
                                     "&& window.app.extensionManager && window.animationStudio)"):
                break
            time.sleep(0.3)
        else:
            pytest.fail("the ComfyUI page (with the pack's extension) did not load in 90 s; console:\n"
                        + "\n".join(e["message"] for e in driver.get_log("browser")))
        time.sleep(1.0)  # late extension setup() and its first fetches
        driver.page_load_log = driver.get_log("browser")
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def run_async(driver, body: str, *args):
    """Run an async JS body; it returns through `done(value)`; a thrown error comes back as {error}."""
    script = ("const done = arguments[arguments.length - 1]; const args = Array.from(arguments).slice(0, -1);"
              f"(async () => {{ {body} }})().then(done, (e) => done({{error: String(e && e.stack || e)}}));")
    return driver.execute_async_script(script, *args)


@browser_tier
def test_extension_loads_without_console_errors(browser):
    errors = severe_errors(browser.page_load_log)
    assert not errors, "console errors while the page and the pack's extension loaded:\n" + "\n".join(errors)
    loaded = browser.execute_script(
        "return {ext: app.extensions.some(e => e.name === 'animation_studio.director'),"
        " tab: app.extensionManager.getSidebarTabs().some(t => t.id === arguments[0]),"
        " nodes: Object.keys(LiteGraph.registered_node_types).filter(t => t.startsWith('AnimStudio_')).length}", TAB_ID)
    assert loaded["ext"] and loaded["tab"], loaded
    assert loaded["nodes"] == len(browser_pack_nodes()), loaded


def browser_pack_nodes() -> list[str]:
    from animation_studio import NODE_CLASS_MAPPINGS

    return list(NODE_CLASS_MAPPINGS)


@browser_tier
@pytest.mark.parametrize("ui_path", UI_WORKFLOWS, ids=lambda p: p.stem)
def test_shipped_workflow_loads_and_converts_in_the_frontend(browser, ui_path):
    workflow = json.loads(ui_path.read_text(encoding="utf-8"))
    twin = API_WORKFLOWS / f"{workflow['extra']['animation_studio_api']}.api.json"
    api = json.loads(twin.read_text(encoding="utf-8"))
    result = run_async(browser, """
        const [wf, name] = args;
        const missing = [...new Set(wf.nodes.map(n => n.type))].filter(t => !LiteGraph.registered_node_types[t]);
        await app.loadGraphData(wf, true, true, name, {showMissingNodesDialog: false, showMissingModelsDialog: false});
        const {output} = await app.graphToPrompt();
        return {missing, output, onCanvas: app.graph.nodes.length};
    """, workflow, ui_path.stem)
    assert "error" not in result, result.get("error")
    assert result["missing"] == [], f"node types the frontend does not know: {result['missing']}"
    assert result["onCanvas"] == len(workflow["nodes"])
    assert without_meta(result["output"]) == without_meta(api)
    errors = severe_errors(browser.get_log("browser"))
    assert not errors, f"console errors while loading {ui_path.name}:\n" + "\n".join(errors)
    if os.environ.get("ANIMATION_STUDIO_UPDATE_SCREENSHOTS"):
        save_thumbnail(browser, WORKFLOWS / f"{ui_path.stem}.jpg")


THUMBNAIL_SIZE = (512, 384)  # the Templates browser's cards are 4:3


def save_thumbnail(driver, path: Path) -> None:
    """The Templates browser's card picture: the whole workflow as it lies on the canvas, as <name>.jpg
    (ComfyUI's frontend asks a pack's templates for <name>.jpg)."""
    import io

    from PIL import Image

    box = run_async(driver, """
        if (app.extensionManager.activeSidebarTab) app.extensionManager.sidebarTab.toggleSidebarTab(app.extensionManager.activeSidebarTab.id);
        await new Promise(r => setTimeout(r, 300));
        const bar = document.querySelector('.side-tool-bar-container');  // the icon bar over the canvas's left edge
        const box = window.animationStudio.showAllNodes(bar, 60);  // at a readable zoom: a big graph shows its start
        await new Promise(r => setTimeout(r, 400));
        return {...box, dpr: window.devicePixelRatio};
    """)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    k, pad = box["dpr"], 16
    # A 4:3 window onto the graph's start, at least 900 CSS pixels wide so the card is not a close-up.
    left, top = box["left"] - pad, box["top"] - pad
    width = max(900.0, (box["bottom"] - box["top"] + 2 * pad) * 4 / 3)
    right, bottom = min(left + width, shot.width / k - 4), min(top + width * 3 / 4, shot.height / k - 4)
    nodes = shot.crop((int(left * k), int(top * k), int(right * k), int(bottom * k)))
    nodes.thumbnail(THUMBNAIL_SIZE, Image.LANCZOS)
    card = Image.new("RGB", THUMBNAIL_SIZE, shot.getpixel((shot.width - 5, shot.height // 2)))  # the canvas colour
    card.paste(nodes, ((THUMBNAIL_SIZE[0] - nodes.width) // 2, (THUMBNAIL_SIZE[1] - nodes.height) // 2))
    card.save(path, "JPEG", quality=88, optimize=True)


def panel_lines(driver) -> str:
    """The panel's decisions-and-checks list, one line per Director event ("#1 check: PASS ...")."""
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"as-steps\"] li')].map(li => li.textContent).join('\\n')")


@browser_tier
def test_director_panel_runs_an_intent_and_shows_its_iterations(browser, server):
    from selenium.webdriver.common.by import By

    # The run makes a title card and verifies it inside ComfyUI (OCR reads the title back).
    missing = missing_in_comfyui_python(("av", "numpy", "PIL"))
    if missing:
        pytest.skip(f"ComfyUI's Python lacks {', '.join(missing)} (.ci/install.d/browser.sh installs them)")
    opened = run_async(browser, """
        app.extensionManager.sidebarTab.toggleSidebarTab(args[0]);
        for (let i = 0; i < 50 && !document.querySelector('[data-testid="as-run"]'); i++) await new Promise(r => setTimeout(r, 100));
        return !!document.querySelector('[data-testid="as-run"]');
    """, TAB_ID)
    assert opened is True, "the Director sidebar tab did not open"

    def field(testid):
        return browser.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    # The frontend's own styling: PrimeVue classes on the controls, so they take the theme's look.
    styled = browser.execute_script("""
        const run = document.querySelector('[data-testid="as-run"]'), intent = document.querySelector('[data-testid="as-intent"]');
        return {button: run.classList.contains('p-button'), input: intent.classList.contains('p-inputtext'),
                background: getComputedStyle(run).backgroundColor};""")
    assert styled["button"] and styled["input"] and styled["background"] not in ("", "rgba(0, 0, 0, 0)"), styled

    field("as-intent").send_keys(TITLE_INTENT)
    field("as-llm").send_keys("none")
    field("as-iterations").clear()
    field("as-iterations").send_keys("2")
    field("as-run").click()

    deadline = time.monotonic() + 240
    log = ""
    while time.monotonic() < deadline:
        log = panel_lines(browser)
        if re.search(r"^(#\d+ )?(done|error):", log, re.M):
            break
        time.sleep(0.5)
    assert re.search(r"^#\d+ done:", log, re.M), f"the Director did not finish; the panel shows:\n{log}"
    assert re.search(r"^#1 plan: .*title\(text='Ciao Portorosso', seconds=2\.0[,)]", log, re.M), log
    assert re.search(r"^#1 graph: \d+ nodes: .*BurnCaption", log, re.M), log
    assert re.search(r"^#1 check: PASS caption_ocr", log, re.M), log
    assert re.search(r"^#1 done: approved", log, re.M), log
    # The plan as a readable list of operations, the progress bar full, the result previewed.
    plan = [li.text for li in field("as-plan").find_elements(By.TAG_NAME, "li")]
    assert plan and plan[0].startswith("title: ") and "Ciao Portorosso" in plan[0], plan
    assert field("as-progress").find_element(By.TAG_NAME, "div").get_attribute("style").find("100%") >= 0
    previews = browser.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"as-media\"] :is(video, img, audio)')]"
        ".map(e => e.dataset.filename);")
    assert any(name.endswith((".mp4", ".webm", ".gif", ".png")) for name in previews), previews

    field("as-load").click()
    loaded = run_async(browser, """
        for (let i = 0; i < 80 && !app.graph.nodes.some(n => n.type === 'AnimStudio_BurnCaption'); i++)
            await new Promise(r => setTimeout(r, 100));
        await new Promise(r => setTimeout(r, 600));  // the panel frames the loaded nodes after the tab has settled
        const boxes = app.graph.nodes.map(n => [n.pos[0], n.pos[1], n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
        const overlaps = boxes.filter((a, i) => boxes.slice(i + 1).some(b => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]));
        return {types: app.graph.nodes.map(n => n.type), scale: app.canvas.ds.scale, overlaps: overlaps.length,
                titled: app.graph.nodes.every(n => n.title && n.title.length > 0)};
    """)
    assert "AnimStudio_BurnCaption" in loaded["types"] and "AnimStudio_DirectorVerify" in loaded["types"], loaded
    assert loaded["scale"] >= 0.6 and loaded["overlaps"] == 0 and loaded["titled"], loaded

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000

    saved = []
    for _ in range(2):  # the second save must not overwrite the first
        before = len(re.findall(r"^saved: ", panel_lines(browser), re.M))
        field("as-save").click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(re.findall(r"^saved: ", panel_lines(browser), re.M)) == before:
            time.sleep(0.2)
        saved = re.findall(r"^saved: (\S+)", panel_lines(browser), re.M)
        assert len(saved) == before + 1, panel_lines(browser)
    assert saved[0] != saved[1], saved
    for name in saved:
        stored = server.base_dir / "user" / "default" / name
        assert json.loads(stored.read_text())["nodes"], stored
    errors = severe_errors(browser.get_log("browser"))
    assert not errors, "console errors while the Director ran:\n" + "\n".join(errors)


PREVIEW_GRAPH = {
    "1": {"class_type": "AnimStudio_SolidImage", "inputs": {"width": 128, "height": 72, "top_color": "#7ec8e3",
                                                           "bottom_color": "#f6d7a7"}},
    "2": {"class_type": "AnimStudio_DramaticSting", "inputs": {"style": "dun_dun_dun", "root_hz": 110.0,
                                                              "sample_rate": 22050, "seed": 0}},
    "6": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 24}},  # 2 s to play
    "3": {"class_type": "AnimStudio_ImagesToVideo", "inputs": {"images": ["6", 0], "fps": 12.0}},
    "4": {"class_type": "AnimStudio_SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": "browser/card",
                                                          "format": "mp4", "with_audio": False}},
    "5": {"class_type": "AnimStudio_SaveAudio", "inputs": {"audio": ["2", 0], "filename_prefix": "browser/sting",
                                                          "format": "wav"}},
}


@browser_tier
def test_output_nodes_show_audio_and_video_previews(browser):
    """Queued from the canvas, SaveVideo's file plays in the frontend's own video preview (sent as ComfyUI's
    SaveVideo sends it: ui.images + ui.animated) and SaveAudio gets the pack's <audio>; both from /view."""
    result = run_async(browser, """
        const api = window.comfyAPI.api.api;  // the frontend's own client, as extensions import it
        app.loadApiJson(args[0], "previews");
        const executed = new Set();
        const onExecuted = (e) => executed.add(String(e.detail?.display_node ?? e.detail?.node));
        api.addEventListener("executed", onExecuted);
        await app.queuePrompt(0, 1);
        for (let i = 0; i < 600 && !(executed.has("4") && executed.has("5")); i++) await new Promise(r => setTimeout(r, 100));
        api.removeEventListener("executed", onExecuted);
        const saveVideo = app.graph.getNodeById(4), saveAudio = app.graph.getNodeById(5);
        // The frontend loads the video when it draws the node; the canvas draws on its own schedule.
        for (let i = 0; i < 100 && !saveVideo.videoContainer?.querySelector("video"); i++) {
          app.canvas.setDirty(true, true); await new Promise(r => setTimeout(r, 100));
        }
        const video = saveVideo.videoContainer?.querySelector("video");
        const audio = saveAudio.widgets?.find(w => w.name === "animation_studio_preview")?.element?.querySelector("audio");
        const played = {};
        if (video) {
          video.muted = true;
          await video.play();
          const start = video.currentTime;
          await new Promise(r => setTimeout(r, 700));
          played.video = {src: video.src, width: video.videoWidth, height: video.videoHeight, duration: video.duration,
                          advanced: video.currentTime - start, widgets: saveVideo.widgets.map(w => w.name)};
          const res = await fetch(video.src);
          played.video.status = res.status; played.video.type = res.headers.get("content-type");
        }
        if (audio) {
          const res = await fetch(audio.src);
          played.audio = {file: audio.dataset.filename, status: res.status, bytes: (await res.arrayBuffer()).byteLength};
        }
        return {executed: [...executed], played};
    """, PREVIEW_GRAPH)
    assert "error" not in result, result.get("error")
    video, audio = result["played"].get("video"), result["played"].get("audio")
    assert video, f"SaveVideo shows no video preview: {result}"
    assert "/view?" in video["src"] and "filename=card_" in video["src"] and video["src"].split("&")[0].endswith(".mp4")
    assert video["status"] == 200 and video["type"] == "video/mp4", video
    assert (video["width"], video["height"]) == (128, 72) and video["duration"] > 0 and video["advanced"] > 0, video
    assert "video-preview" in video["widgets"] and "animation_studio_preview" not in video["widgets"], video
    assert audio and audio["file"].endswith(".wav") and audio["status"] == 200 and audio["bytes"] > 1000, result
    errors = severe_errors(browser.get_log("browser"))
    assert not errors, "console errors while previews loaded:\n" + "\n".join(errors)


@browser_tier
def test_templates_browser_shows_each_ui_workflow_by_its_readable_title_with_its_thumbnail(browser):
    """ComfyUI 0.8.0 lists <pack>/workflows/*.json (not subfolders) as the pack's templates; frontend 1.35.9 titles
    each card with the file name (and describes it with the same name, '-' and '_' read as spaces) and shows
    <name>.jpg. In its Templates dialog the pack's category holds exactly the UI workflows, titled as a person
    reads them, every picture loaded, and a card opens its workflow on the canvas."""
    result = run_async(browser, """
        const wait = async (test, what) => {
          for (let i = 0; i < 100; i++) { const v = test(); if (v) return v; await new Promise(r => setTimeout(r, 100)); }
          throw new Error('timed out waiting for ' + what);
        };
        performance.clearResourceTimings();
        await app.extensionManager.command.execute('Comfy.BrowseTemplates');
        const dialog = await wait(() => document.querySelector('.workflow-template-selector-dialog'), 'the dialog');
        const nav = await wait(() => [...dialog.querySelectorAll('*')].find(e => e.children.length === 0
                                      && e.textContent.trim() === args[0]), 'the pack in the Extensions list');
        nav.click();
        const cards = () => [...dialog.querySelectorAll('[data-testid^="template-workflow-"]')];
        await wait(() => cards().length === args[1], 'the cards');
        const shown = [];
        for (const card of cards()) {  // a card loads its picture (a blob: of the fetched file) once in view
          card.scrollIntoView({block: 'center'});
          const img = await wait(() => [...card.querySelectorAll('img')].find(i => i.complete && i.naturalWidth > 0),
                                 'the picture of ' + card.dataset.testid);
          shown.push({title: card.querySelector('h3')?.textContent.trim(),
                      description: card.querySelector('p')?.textContent.trim(),
                      img: {src: img.getAttribute('src'), width: img.naturalWidth}});
        }
        const fetched = performance.getEntriesByType('resource')
          .filter(e => e.name.includes(`/workflow_templates/${args[0]}/`))
          .map(e => ({file: decodeURIComponent(e.name.split('/').pop()), status: e.responseStatus}));
        cards().find(c => c.querySelector('h3')?.textContent.trim() === args[2]).click();
        await wait(() => !document.querySelector('.workflow-template-selector-dialog')
                         && app.graph.nodes.some(n => n.type === 'AnimStudio_ExaggerateExpressionVideo'), 'the opened card');
        return {shown, fetched, opened: app.graph.nodes.length};
    """, comfyui_harness.PACK_FOLDER_NAME, len(UI_WORKFLOWS), PARODY_TITLE)
    assert "error" not in result, result.get("error")
    shown = result["shown"]
    assert sorted(card["title"] for card in shown) == sorted(p.stem for p in UI_WORKFLOWS), shown
    assert PARODY_TITLE in [card["title"] for card in shown]
    for card in shown:  # a sentence, not a file name; the description is the same words
        assert " " in card["title"] and not re.search(r"[_.]|json|jpg", card["title"]), card
        assert card["description"] == card["title"], card
        # The fetched picture, not the frontend's stand-in for a missing one (/assets/images/default-template.png).
        assert card["img"]["src"].startswith("blob:") and card["img"]["width"] >= 256, card
    pictures = [f for f in result["fetched"] if f["file"].endswith(".jpg")]
    assert sorted(f["file"] for f in pictures) == sorted(f"{p.stem}.jpg" for p in UI_WORKFLOWS), result["fetched"]
    assert all(f["status"] == 200 for f in result["fetched"]), result["fetched"]
    assert result["opened"] == len(json.loads((WORKFLOWS / f"{PARODY_TITLE}.json").read_text())["nodes"])
    errors = severe_errors(browser.get_log("browser"))
    assert not errors, "console errors in the Templates dialog:\n" + "\n".join(errors)


# Core nodes the frontend's own extensions give extra widgets that graphToPrompt sends (uploadAudio.ts: an `audioUI`
# player; previewAny.ts: `preview` and `previewMode`).
FRONTEND_WIDGET_NODES = {"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus", "PreviewAny"}


def official_template_sample(count: int = 10, having: set[str] | None = None) -> list[Path]:
    """A spread of ComfyUI's official templates (the dev extra's packages) whose nodes ComfyUI 0.8.0 knows;
    with `having`, only those using one of these node types (one template per such type and file name)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_convert_templates import all_nodes, expected_widget_count, template_files

    from animation_studio.agent.convert import VIRTUAL_TYPES, core_catalog, has_upload_widget

    def same_node_version(node: dict) -> bool:
        # A template saved with another version of a node stores another number of widget values: the frontend
        # and the converter then fill the differing widgets each its own way, and neither is ComfyUI 0.8.0's.
        spec, values = catalog.get(node["type"]), node.get("widgets_values")
        if spec is None or not isinstance(values, list):
            return True
        expected = expected_widget_count(spec)
        return len(values) == expected or (len(values) > expected and any(map(has_upload_widget, spec.inputs.values())))

    catalog, known, seen = core_catalog(), [], set()
    for path in template_files():
        workflow = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(workflow, dict) or "nodes" not in workflow:
            continue
        subgraphs = {s["id"] for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
        nodes = all_nodes(workflow)
        if having is not None and not (having & {n["type"] for n in nodes} and path.stem not in seen):
            continue
        if all(n["type"] in catalog or n["type"] in VIRTUAL_TYPES or n["type"] in subgraphs for n in nodes) \
                and all(map(same_node_version, nodes)):
            known.append(path)
            seen.add(path.stem)
    step = max(1, len(known) // count)
    return known[::step][:count]


@browser_tier
@pytest.mark.parametrize("template", official_template_sample() + official_template_sample(having=FRONTEND_WIDGET_NODES),
                         ids=lambda p: p.stem)
def test_official_template_converts_offline_like_the_frontend(browser, template):
    """`animation-studio convert` with no server (the shipped core snapshot) gives what the real frontend's
    graphToPrompt gives for ComfyUI's own templates."""
    from animation_studio.agent.catalog import pack_catalog
    from animation_studio.agent.convert import offline_catalog, ui_to_api

    workflow = json.loads(template.read_text(encoding="utf-8"))
    result = run_async(browser, """
        const [wf, name] = args;
        await app.loadGraphData(wf, true, true, name, {showMissingNodesDialog: false, showMissingModelsDialog: false});
        const {output} = await app.graphToPrompt();
        return {output};
    """, workflow, template.stem)
    assert "error" not in result, result.get("error")
    ours = ui_to_api(workflow, offline_catalog(pack_catalog()))
    assert without_meta(ours) == without_meta(result["output"])
