"""Every LLM call of the Director, recorded: prompt, an excerpt of the answer, tokens, seconds; a timeout stops the run.

The caller is handed to the LLM planner (llm_plan.plan_with_llm) and, inside ComfyUI, memoised across
re-executions of expanded nodes.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ...configs.net import excerpt


class LLMTimeout(RuntimeError):
    """The LLM did not answer in time; the run stops with this message."""


@dataclass
class LLMCaller:
    """Calls the backend, records every prompt and a short excerpt of each answer (a remote server may have
    written it: never whole in run.json), counts tokens and LLM seconds."""

    backend: Any = None
    log: list = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    memo: dict | None = None  # (role, prompt) -> data; the ComfyUI node memoises calls across re-executions

    def ask(self, role: str, system: str, user: str, schema: dict | None, images: list | None = None,
            max_tokens: int = 512) -> dict | None:
        """The validated JSON answer, or None when there is no backend or the answer was rejected."""
        if self.backend is None:
            return None
        # The images are part of the question: the same rubric on a new render must be asked again.
        seen = hashlib.sha256(b"".join(images or [])).hexdigest() if images else ""
        key = (role, system, user, json.dumps(schema, sort_keys=True), seen)
        if self.memo is not None and key in self.memo:
            return self.memo[key]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        entry: dict = {"role": role, "messages": messages, "schema": schema, "images": len(images or [])}
        started = time.perf_counter()
        try:
            reply = self.backend.chat(messages, schema=schema, images=images or None, temperature=0.0,
                                      max_tokens=max_tokens)
        except Exception as exc:  # noqa: BLE001 - recorded; a timeout stops the run, anything else falls back
            entry.update(error=f"{type(exc).__name__}: {excerpt(str(exc), 300)}", seconds=time.perf_counter() - started)
            self.seconds += entry["seconds"]
            self.log.append(entry)
            text = f"{type(exc).__name__} {exc}".lower()
            if "timeout" in text or "timed out" in text:
                raise LLMTimeout(f"the LLM ({getattr(self.backend, 'model', '?')}) did not answer in time: "
                                 f"{excerpt(str(exc), 300)}") from None
            return None
        seconds = getattr(reply, "seconds", None) or (time.perf_counter() - started)
        tokens = int(getattr(reply, "prompt_tokens", 0) or 0) + int(getattr(reply, "completion_tokens", 0) or 0)
        self.tokens += tokens
        self.seconds += seconds
        data = getattr(reply, "data", None)
        if data is None and schema is not None:
            data, why = _parse_json(getattr(reply, "text", ""))
            if why:
                entry["rejected"] = why
        entry.update(answer=excerpt(getattr(reply, "text", "") or ""), json_object=isinstance(data, dict),
                     tokens=tokens, seconds=seconds, model=excerpt(str(getattr(reply, "model", "") or ""), 80),
                     backend=excerpt(str(getattr(reply, "backend", "") or ""), 80))
        self.log.append(entry)
        if not isinstance(data, dict):
            entry.setdefault("rejected", "the answer is not a JSON object")
            data = None
        if self.memo is not None:
            self.memo[key] = data
        return data


def _parse_json(text: str) -> tuple[Any, str]:
    """Repair the usual small-model damage (code fences, prose around the object); else say why not."""
    text = (text or "").strip()
    text = re.sub(r"^```(?:json)?|```$", "", text, flags=re.M).strip()
    try:
        return json.loads(text), ""
    except json.JSONDecodeError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        try:
            return json.loads(text[start:end + 1]), ""
        except json.JSONDecodeError as exc:
            return None, f"invalid JSON from the LLM: {exc.msg} at column {exc.colno}"
    return None, "invalid JSON from the LLM: no JSON object in the answer"
