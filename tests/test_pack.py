"""The pack as ComfyUI and pip see it: layout, exports, import hygiene."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_layout_as_the_design_card_asks():
    for name in ["__init__.py", "nodes", "agent", "workflows", "web", "configs", "tests", "pyproject.toml",
                 "README.md", "requirements.txt", ".ci/run"]:
        assert (ROOT / name).exists(), name


def test_pyproject_packaging():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "comfyui-animation-studio"
    assert meta["project"]["scripts"]["animation-studio"] == "animation_studio.agent.cli:main"
    comfy = meta["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon"} <= set(comfy)
    assert (ROOT / comfy["Icon"]).exists()
    extras = meta["project"]["optional-dependencies"]
    assert {"video", "face", "voice", "image", "dataset", "dev"} <= set(extras)
    assert not any(d.startswith("torchvision") for deps in extras.values() for d in deps)


def test_every_sub_package_is_packaged():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(meta["tool"]["setuptools"]["packages"])
    found = {"animation_studio" + ("." + ".".join(p.parent.relative_to(ROOT).parts) if p.parent != ROOT else "")
             for p in ROOT.rglob("__init__.py")
             if not {".venv", "tests", "build"} & set(p.relative_to(ROOT).parts)}
    assert found == listed


def test_exports_for_comfyui():
    import animation_studio as pack

    assert pack.WEB_DIRECTORY == "./web"
    assert pack.NODE_CLASS_MAPPINGS and set(pack.NODE_DISPLAY_NAME_MAPPINGS) <= set(pack.NODE_CLASS_MAPPINGS)
    for key, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert key.startswith("AnimStudio_"), key
        assert hasattr(cls, "INPUT_TYPES") and hasattr(cls, "RETURN_TYPES") and hasattr(cls, "FUNCTION"), key
        assert callable(getattr(cls, cls.FUNCTION)), key
        json.dumps(cls.INPUT_TYPES())  # /object_info must be able to serialise it


def test_no_family_failed_to_import():
    from animation_studio.nodes import FAMILY_ERRORS

    assert FAMILY_ERRORS == {}


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_loads_no_heavy_library():
    heavy = ["torch", "cv2", "av", "diffusers", "transformers", "mediapipe", "scenedetect", "moviepy",
             "insightface", "sam2", "llama_cpp", "langgraph", "piper", "dlib", "onnxruntime"]
    loaded = json.loads(_fresh(
        "import sys, json, animation_studio\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"))
    assert loaded == []


def test_never_importable_as_top_level_nodes_or_agent():
    out = _fresh("import animation_studio, sys; print('nodes' in sys.modules, 'agent' in sys.modules)")
    assert out.split() == ["False", "False"]


def test_loads_as_a_comfyui_custom_node_folder(tmp_path):
    """ComfyUI imports custom_nodes/<folder>/__init__.py under the folder's name, with its own `nodes` module."""
    code = (
        "import importlib.util, sys, types\n"
        "sys.modules['nodes'] = types.ModuleType('nodes')  # ComfyUI's own module must stay untouched\n"
        f"spec = importlib.util.spec_from_file_location('comfyui-animation-studio', {str(ROOT / '__init__.py')!r},"
        f" submodule_search_locations=[{str(ROOT)!r}])\n"
        "m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m)\n"
        "print(len(m.NODE_CLASS_MAPPINGS), m.WEB_DIRECTORY, hasattr(sys.modules['nodes'], 'NODE_CLASS_MAPPINGS'))\n")
    count, web, clobbered = _fresh(code).split()
    assert int(count) > 0 and web == "./web" and clobbered == "False"


def test_missing_optional_dependency_names_the_extra():
    import pytest

    from animation_studio.nodes import bridge

    with pytest.raises(bridge.MissingDependency, match=r"comfyui-animation-studio\[video\]"):
        bridge.require("surely_not_installed_module_xyz", "video")


def test_missing_model_names_file_and_folder(studio_dirs):
    import pytest

    from animation_studio.nodes import bridge

    with pytest.raises(bridge.MissingModel) as err:
        bridge.find_model("sam2", "sam2_hiera_large.pt")
    assert "sam2_hiera_large.pt" in str(err.value) and str(studio_dirs["models"] / "sam2") in str(err.value)
    (studio_dirs["models"] / "sam2").mkdir()
    (studio_dirs["models"] / "sam2" / "sam2_hiera_large.pt").write_bytes(b"x")
    assert bridge.find_model("sam2", "sam2_hiera_large.pt").name == "sam2_hiera_large.pt"
    assert bridge.list_models("sam2", (".pt",)) == ["sam2_hiera_large.pt"]
    with pytest.raises(bridge.MissingModel, match="Invalid model name"):
        bridge.find_model("sam2", "../../etc/passwd")


def test_input_paths_stay_inside_the_input_folder(studio_dirs):
    import pytest

    from animation_studio.nodes import bridge

    (studio_dirs["input"] / "clip.mp4").write_bytes(b"x")
    assert bridge.safe_input_path("clip.mp4").name == "clip.mp4"
    with pytest.raises(PermissionError, match="outside the input folder"):
        bridge.safe_input_path("../../etc/passwd")
    with pytest.raises(PermissionError):
        bridge.safe_input_path("/etc/passwd")
    with pytest.raises(FileNotFoundError):
        bridge.safe_input_path("missing.mp4")


def test_unique_output_paths_never_collide(studio_dirs):
    from animation_studio.nodes import bridge

    paths = {bridge.unique_output_path("take", ".wav", "voice") for _ in range(5)}
    assert len(paths) == 5 and all(p.parent == studio_dirs["outputs"] / "voice" for p in paths)


class _FamilyWithAMissingLibrary:
    """A finder/loader for one made-up family module whose body imports a library that is not installed."""

    def __init__(self, fullname: str, missing: str):
        self.fullname, self.missing = fullname, missing

    def find_spec(self, fullname, path=None, target=None):
        import importlib.util

        return importlib.util.spec_from_loader(fullname, self) if fullname == self.fullname else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(f"import {self.missing}", module.__dict__)


def test_a_family_missing_an_optional_library_is_left_out_with_a_line_naming_the_extra(monkeypatch, caplog):
    import animation_studio.nodes as nodes

    finder = _FamilyWithAMissingLibrary(f"{nodes.__name__}.fake_family", "surely_not_installed_lib_xyz")
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    monkeypatch.setattr(nodes, "FAMILY_ERRORS", {})
    before = dict(nodes.NODE_CLASS_MAPPINGS)
    with caplog.at_level("ERROR", logger="animation_studio"):
        nodes.load_families({"fake_family": "face"})
    assert "surely_not_installed_lib_xyz" in nodes.FAMILY_ERRORS["fake_family"]
    assert 'pip install "comfyui-animation-studio[face]"' in caplog.text
    assert nodes.NODE_CLASS_MAPPINGS == before  # the rest of the pack is untouched


def test_a_missing_or_misspelt_family_fails_loudly():
    import pytest

    import animation_studio.nodes as nodes

    with pytest.raises(ImportError, match="'evalute' is listed in nodes/__init__.py but cannot be imported"):
        nodes.load_families({"evalute": None})
    assert all((ROOT / "nodes" / f"{family}.py").is_file() or (ROOT / "nodes" / family / "__init__.py").is_file()
               for family in nodes.FAMILIES)


# ---------------------------------------------------------------- layers point one way
# nodes/director.py (the LLM Director node) moves into agent/ in the Director rework; until it has, it is the
# one module of nodes/ allowed to import agent/. Once it is gone the allowance no longer matches anything.
NOT_YET_MOVED = {"nodes/director.py"}


def imported_pack_modules(path: Path) -> set[tuple[str, ...]]:
    """Every module of this pack that `path` imports (anywhere in it, also inside functions), as path parts
    relative to the pack root: ("agent", "llm"), ("configs", "settings"), ..."""
    import ast

    package = list(path.relative_to(ROOT).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else list(package)
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [alias.name] for alias in node.names] if not node.module else [target]
            elif (node.module or "").split(".")[0] == "animation_studio":
                names = [node.module.split(".")[1:]]
            else:
                continue
            found.update(tuple(name) for name in names)
        elif isinstance(node, ast.Import):
            found.update(tuple(alias.name.split(".")[1:]) for alias in node.names
                         if alias.name.split(".")[0] == "animation_studio")
    return found


def test_imported_pack_modules_reads_relative_and_absolute_imports(tmp_path):
    probe = ROOT / "nodes" / "voice" / "speak.py"
    found = imported_pack_modules(probe)
    assert ("nodes", "voice", "profiles") in found  # from .profiles import ...
    assert any(module[:1] == ("nodes",) and "bridge" in module for module in found)  # from .. import bridge


def test_nodes_never_import_agent():
    offenders = []
    for path in sorted((ROOT / "nodes").rglob("*.py")):
        relative = str(path.relative_to(ROOT))
        if relative in NOT_YET_MOVED:
            continue
        agent = sorted(".".join(m) for m in imported_pack_modules(path) if m[:1] == ("agent",))
        if agent:
            offenders.append(f"{relative} imports {', '.join(agent)}")
    assert not offenders, "nodes/ must not import agent/ (move shared code to configs/):\n" + "\n".join(offenders)


def test_the_base_package_imports_neither_side_s_agent():
    for path in sorted((ROOT / "configs").rglob("*.py")):
        assert not [m for m in imported_pack_modules(path) if m[:1] == ("agent",)], path


def test_command_line_modules_import_no_other_command_module():
    """cli.py assembles the sub-commands; they share cli_common.py and never import each other (no circle)."""
    commands = {("agent", "cli"), ("agent", "dataset_cli"), ("agent", "director", "cli")}
    for module in commands - {("agent", "cli")}:
        imported = imported_pack_modules(ROOT.joinpath(*module[:-1], module[-1] + ".py"))
        assert not imported & commands, (module, imported & commands)
    assert not imported_pack_modules(ROOT / "agent" / "cli_common.py") & commands


def test_the_catalog_reads_the_pack_without_its_entry_module():
    """agent/catalog.py builds the pack's catalog from pack_mappings(), not from the module that registers routes."""
    imported = imported_pack_modules(ROOT / "agent" / "catalog.py")
    assert ("nodes",) in imported
    assert all(module[:1] in (("agent",), ("nodes",), ("configs",)) for module in imported), imported


# ---------------------------------------------------------------- how the nodes look in ComfyUI
def test_every_input_of_every_node_has_a_tooltip():
    import animation_studio as pack

    missing = []
    for key, cls in pack.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, spec in (types.get(section) or {}).items():
                options = spec[1] if len(spec) > 1 else {}
                if not (isinstance(options.get("tooltip"), str) and len(options["tooltip"]) >= 8):
                    missing.append(f"{key}.{name}")
    assert not missing, f"{len(missing)} inputs without a tooltip (add one to nodes/tooltips.py): {missing}"


def test_a_node_s_own_tooltip_wins_over_the_table():
    from animation_studio.nodes.tooltips import add_tooltips

    class Probe:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"video": ("STUDIO_VIDEO", {"tooltip": "mine"}), "fps": ("FLOAT", {"default": 1.0})},
                    "optional": {"audio": ("AUDIO",)}}

    add_tooltips("AnimStudio_Probe", Probe)
    add_tooltips("AnimStudio_Probe", Probe)  # once only
    types = Probe.INPUT_TYPES()
    assert types["required"]["video"][1]["tooltip"] == "mine"
    assert types["required"]["fps"][1] == {"default": 1.0, "tooltip": "Frames per second."}
    assert types["optional"]["audio"][0] == "AUDIO" and types["optional"]["audio"][1]["tooltip"]


def test_every_node_has_a_category_and_a_display_name_under_animation_studio():
    import animation_studio as pack

    for key, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert getattr(cls, "CATEGORY", "").startswith("Animation Studio"), (key, getattr(cls, "CATEGORY", None))
        name = pack.NODE_DISPLAY_NAME_MAPPINGS.get(key, "")
        assert name and not name.startswith("AnimStudio_") and "_" not in name, (key, name)


def test_the_template_folder_holds_only_ui_workflows_each_with_a_real_thumbnail():
    """ComfyUI lists workflows/*.json as the pack's templates (its scan does not descend into api/) and shows
    workflows/<name>.jpg on each card; the API twins live in workflows/api/."""
    import numpy as np
    from PIL import Image

    folder = ROOT / "workflows"
    ui = sorted(folder.glob("*.json"))
    assert ui and all("nodes" in json.loads(p.read_text()) and "links" in json.loads(p.read_text()) for p in ui)
    # Each is named for a person (the Templates card shows only the file name) and names its API twin.
    twins = [json.loads(p.read_text())["extra"].get("animation_studio_api") for p in ui]
    assert sorted(twins) == sorted(p.name[:-len(".api.json")] for p in (folder / "api").glob("*.api.json"))
    readable = re.compile(r"[A-Z][a-z]+( [A-Za-z]+)*(, [a-z]+( [A-Za-z]+)*)?")  # words; no _ or - to respell
    assert all(readable.fullmatch(p.stem) for p in ui), [p.stem for p in ui]
    assert {p.name for p in folder.iterdir()} == {p.name for p in ui} | {f"{p.stem}.jpg" for p in ui} | {"api"}
    for path in ui:
        thumb = Image.open(folder / f"{path.stem}.jpg")
        pixels = np.asarray(thumb.convert("L"), dtype=np.float32)
        assert thumb.format == "JPEG" and thumb.width >= 256 and thumb.height >= 256, path.stem
        assert pixels.std() > 10, f"{path.stem}.jpg is nearly flat"
        assert (folder / f"{path.stem}.jpg").stat().st_size < 200_000


def test_in_ci_a_skipped_comfyui_or_browser_test_fails(tmp_path):
    """tests/conftest.py: with CI set, a tier that cannot run fails the run; elsewhere it skips. Plain skips and
    expected failures are left alone."""
    import os
    import shutil

    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_tiers.py").write_text(
        "import pytest\n"
        "@pytest.mark.comfyui\ndef test_tier():\n    pytest.skip('no ComfyUI here')\n"
        "@pytest.mark.browser\n@pytest.mark.skipif(True, reason='no chromium')\ndef test_browser():\n    pass\n"
        "def test_plain():\n    pytest.skip('not a tier')\n"
        "@pytest.mark.comfyui\n@pytest.mark.xfail(strict=True, reason='known')\ndef test_known():\n    assert False\n")

    def run(ci: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-W", "ignore",
                               str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    in_ci = run("true")
    assert in_ci.returncode == 1, in_ci.stdout
    assert "1 failed, 1 skipped, 1 xfailed, 1 error" in in_ci.stdout, in_ci.stdout  # a setup-time skip is an error
    assert "the comfyui tier must run in CI" in in_ci.stdout and "the browser tier must run in CI" in in_ci.stdout
    elsewhere = run("")
    assert elsewhere.returncode == 0 and "3 skipped, 1 xfailed" in elsewhere.stdout, elsewhere.stdout
