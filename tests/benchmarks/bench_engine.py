"""Benchmarks of the pack foundation (prints figures; not a test).

1. Pack import time: `python -X importtime -c "import animation_studio"` (target <= 1.5 s,
   no torch model code), the 10 most expensive modules, and whether torch got imported.
2. Engine overhead per node on chains of trivial nodes (50/100/200/400):
   embedded:   AnimStudio_Text -> AnimStudio_JoinText x N -> AnimStudio_ShowJSON, against the same
               N JoinText calls made directly (the peer: what the work itself costs);
   ComfyUI:    when COMFYUI_PATH is set, PrimitiveString -> StringConcatenate x N -> PreviewAny on a real
               `--cpu` server, timed from execution_start to execution_success (its own timestamps), as
               /work/shared/docs/anchors-measured.md does; and the pack's own chain on that server.
A fresh string each run so nothing is cached.

    .venv/bin/python tests/benchmarks/bench_engine.py [--sizes 50,100,200,400] [--repeat 3]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import comfyui_harness  # noqa: E402


# ---------------------------------------------------------------- 1. import time
def import_time(python: str = sys.executable, repeat: int = 3) -> dict:
    code = "import sys, animation_studio; print('torch' in sys.modules, len(animation_studio.NODE_CLASS_MAPPINGS))"
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run([python, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        rows = []
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if match:
                rows.append((int(match[1]), int(match[2]), len(match[3]), match[4]))
        total = next((cum for _, cum, _, name in rows if name == "animation_studio"), 0)
        torch_loaded, nodes = proc.stdout.split()
        run = {"wall_s": wall, "total_us": total, "rows": rows, "torch": torch_loaded == "True", "nodes": int(nodes)}
        if best is None or total < best["total_us"]:
            best = run
    return best


def print_import_time(result: dict) -> None:
    total_s = result["total_us"] / 1e6
    print("== Pack import (python -X importtime -c 'import animation_studio'), best of 3")
    print(f"animation_studio cumulative: {total_s:.3f} s (target <= 1.5 s: {'met' if total_s <= 1.5 else 'MISSED'}); "
          f"process wall {result['wall_s']:.3f} s; {result['nodes']} nodes registered")
    print(f"torch imported: {'yes' if result['torch'] else 'no'}; "
          f"heavy modules present: {sorted(m for m in _heavy(result['rows']))}")
    print("top 10 modules by own import time:")
    for self_us, cum_us, _, name in sorted(result["rows"], reverse=True)[:10]:
        print(f"  {self_us / 1000:8.1f} ms self  {cum_us / 1000:8.1f} ms cumulative  {name}")


def _heavy(rows) -> set[str]:
    heavy = {"torch", "cv2", "av", "mediapipe", "diffusers", "transformers", "scipy", "sklearn", "ray", "langgraph"}
    return {name for *_, name in rows if name in heavy}


# ---------------------------------------------------------------- 2. engine overhead
def pack_chain(n: int, seed: str, final: str = "AnimStudio_ShowJSON") -> dict:
    graph = {"0": {"class_type": "AnimStudio_Text", "inputs": {"text": seed}}}
    for i in range(1, n + 1):
        graph[str(i)] = {"class_type": "AnimStudio_JoinText", "inputs": {"a": [str(i - 1), 0], "b": "x", "separator": ""}}
    graph["out"] = {"class_type": final, "inputs": {"text": [str(n), 0]}}
    return graph


def core_chain(n: int, seed: str) -> dict:
    graph = {"0": {"class_type": "PrimitiveString", "inputs": {"value": seed}}}
    for i in range(1, n + 1):
        graph[str(i)] = {"class_type": "StringConcatenate",
                         "inputs": {"string_a": [str(i - 1), 0], "string_b": "x", "delimiter": ""}}
    graph["out"] = {"class_type": "PreviewAny", "inputs": {"source": [str(n), 0]}}
    return graph


def direct_calls(n: int) -> float:
    """The peer: the same N JoinText calls with no engine around them."""
    import animation_studio

    node = animation_studio.NODE_CLASS_MAPPINGS["AnimStudio_JoinText"]()
    fn = getattr(node, node.FUNCTION)
    text = uuid.uuid4().hex
    started = time.perf_counter()
    for _ in range(n):
        (text,) = fn(a=text, b="x", separator="")
    return time.perf_counter() - started


def embedded_seconds(n: int, repeat: int) -> tuple[float, float]:
    from animation_studio.agent.engine import EmbeddedEngine

    engine = EmbeddedEngine()
    engine.run(pack_chain(n, uuid.uuid4().hex))  # warm-up: imports, catalog
    runs, direct = [], []
    for _ in range(repeat):
        graph = pack_chain(n, uuid.uuid4().hex)
        started = time.perf_counter()
        result = engine.run(graph)
        runs.append(time.perf_counter() - started)
        assert result.ok and len(result.executed) == n + 2, result.message()
        direct.append(direct_calls(n))
    return statistics.median(runs), statistics.median(direct)


def server_seconds(engine, make_graph, n: int, repeat: int) -> float:
    """Median of execution_start -> execution_success, from the server's own timestamps (ms)."""
    times = []
    for i in range(repeat + 1):
        stamps = {}
        result = engine.run(make_graph(n, uuid.uuid4().hex),
                            on_event=lambda kind, data: stamps.setdefault(kind, (data.get("timestamp"),
                                                                                  time.perf_counter())))
        assert result.ok and len(result.executed) == n + 2, result.message()
        (start_ms, start_local), (end_ms, end_local) = stamps["execution_start"], stamps["execution_success"]
        seconds = (end_ms - start_ms) / 1000 if start_ms and end_ms else end_local - start_local
        if i:  # the first run warms the server up
            times.append(seconds)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description="Pack import time and engine overhead per node")
    parser.add_argument("--sizes", default="50,100,200,400")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print_import_time(import_time())
    print()

    rows = {n: {"embedded": embedded_seconds(n, args.repeat)} for n in sizes}
    root = comfyui_harness.comfyui_path()
    version = ""
    if root is not None:
        from animation_studio.agent.server_engine import ServerEngine

        with comfyui_harness.ComfyUIServer(root) as server:
            version = server.get_json("/system_stats").get("system", {}).get("comfyui_version", "?")
            engine = ServerEngine(server.url, timeout=600)
            for n in sizes:
                rows[n]["comfyui"] = server_seconds(engine, core_chain, n, max(1, args.repeat - 1))
                rows[n]["comfyui_pack"] = server_seconds(
                    engine, lambda k, s: pack_chain(k, s, "AnimStudio_ShowJSON"), n, max(1, args.repeat - 1))

    print("== Engine overhead on a chain of N trivial nodes (+ source and output node), median of runs")
    head = "| N | direct calls | embedded run | embedded overhead/node"
    if root is not None:
        head += f" | ComfyUI {version} core chain | per node | ComfyUI, pack chain | per node | ComfyUI / embedded per node"
    print(head + " |")
    print("|" + "---|" * head.count("|"))
    for n in sizes:
        run, direct = rows[n]["embedded"]
        per_node = run / (n + 2)
        line = f"| {n} | {direct * 1e3:.2f} ms | {run * 1e3:.1f} ms | {(run - direct) / (n + 2) * 1e3:.3f} ms"
        if root is not None:
            core, pack = rows[n]["comfyui"], rows[n]["comfyui_pack"]
            line += (f" | {core * 1e3:.0f} ms | {core / (n + 2) * 1e3:.2f} ms | {pack * 1e3:.0f} ms"
                     f" | {pack / (n + 2) * 1e3:.2f} ms | {core / run:.1f}x")
        print(line + " |")
    if root is None:
        print("(set COMFYUI_PATH to a ComfyUI checkout to compare with a real server)")


if __name__ == "__main__":
    main()
