"""Validation cost against graph size (prints figures; not a test).

Ours (agent/validate.py over ComfyUI 0.8.0's core catalog, the snapshot in configs/) against the peer,
ComfyUI 0.8.0's own `execution.validate_prompt` run in its venv when COMFYUI_PATH/COMFYUI_PYTHON are set,
on the same core-node graphs:
  outputs N: N PreviewImage nodes each missing its `images` input (N invalid outputs);
  cycle N:   ImageInvert x N in a ring, read by one PreviewImage;
  chain N:   EmptyImage -> ImageInvert x N -> PreviewImage (valid).
Seconds (best of --repeat) and the size of the JSON answer (what a client receives or a run.json keeps).

    .venv/bin/python tests/benchmarks/bench_validate.py [--sizes 500,1000,2000,5000] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PEER = r'''
import asyncio, json, sys, time
sys.argv = ["main.py", "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
import nodes, execution
graphs = json.loads(sys.stdin.read())
out = {}
for name, (graph, repeat) in graphs.items():
    best, size = None, 0
    for _ in range(repeat):
        started = time.perf_counter()
        ok, error, good, node_errors = asyncio.run(execution.validate_prompt("bench", graph, None))
        seconds = time.perf_counter() - started
        best = seconds if best is None else min(best, seconds)
        size = len(json.dumps({"error": error, "node_errors": node_errors}, default=str))
    out[name] = [best, size]
print("RESULT " + json.dumps(out))
'''


def graphs(sizes: list[int]) -> dict:
    made = {}
    for n in sizes:
        made[f"outputs {n}"] = {f"p{i}": {"class_type": "PreviewImage", "inputs": {}} for i in range(n)}
        ring = {str(i): {"class_type": "ImageInvert", "inputs": {"image": [str((i + 1) % n), 0]}} for i in range(n)}
        ring["out"] = {"class_type": "PreviewImage", "inputs": {"images": ["0", 0]}}
        made[f"cycle {n}"] = ring
        chain = {"0": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}}
        for i in range(1, n + 1):
            chain[str(i)] = {"class_type": "ImageInvert", "inputs": {"image": [str(i - 1), 0]}}
        chain["out"] = {"class_type": "PreviewImage", "inputs": {"images": [str(n), 0]}}
        made[f"chain {n}"] = chain
    return made


def ours(made: dict, repeat: int) -> dict:
    from animation_studio.agent.convert import core_catalog
    from animation_studio.agent.validate import validate_graph

    catalog = core_catalog()
    out = {}
    for name, graph in made.items():
        best, size = None, 0
        for _ in range(repeat):
            started = time.perf_counter()
            result = validate_graph(graph, catalog)
            seconds = time.perf_counter() - started
            best = seconds if best is None else min(best, seconds)
            size = len(json.dumps(result.as_response()))
        out[name] = [best, size]
    return out


def peer(made: dict, repeat: int, timeout: float = 900) -> dict | None:
    path, python = os.environ.get("COMFYUI_PATH"), os.environ.get("COMFYUI_PYTHON")
    if not path or not python:
        return None
    try:
        proc = subprocess.run([python, "-c", PEER], cwd=path, input=json.dumps({k: [g, repeat] for k, g in made.items()}),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"ComfyUI's validate_prompt did not finish within {timeout:g} s"}
    line = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        return {"error": (proc.stderr or proc.stdout)[-400:]}
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,1000,2000,5000")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    made = graphs([int(s) for s in args.sizes.split(",")])
    mine = ours(made, args.repeat)
    theirs = peer(made, args.repeat) or {}
    print("== Validation cost (best of %d); answer = JSON error/node_errors size" % args.repeat)
    if "error" in theirs:
        print(f"ComfyUI peer: {theirs['error']}")
    elif not theirs:
        print("ComfyUI peer: set COMFYUI_PATH and COMFYUI_PYTHON to measure ComfyUI 0.8.0's validate_prompt")
    print(f"{'graph':<14} {'ours s':>9} {'ours answer':>12} {'ComfyUI s':>10} {'ComfyUI answer':>15}")
    for name, (seconds, size) in mine.items():
        peer_s, peer_size = (theirs.get(name) or [None, None]) if "error" not in theirs else (None, None)
        shown = f"{peer_s:10.3f} {peer_size:15,d}" if peer_s is not None else f"{'-':>10} {'-':>15}"
        print(f"{name:<14} {seconds:9.3f} {size:12,d} {shown}")


if __name__ == "__main__":
    main()
