"""The Director's typed state: the brief, the plan and what each loop step records.

Everything in the state is plain JSON data (dicts, lists, strings, numbers) so
the SQLite checkpointer can store it after every step and `--resume` can pick
the run up again in a new process.
"""
from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

TaskKind = Literal["parody_video", "character_voice", "character_image", "lora_dataset", "composition"]
TASK_KINDS: tuple[str, ...] = ("parody_video", "character_voice", "character_image", "lora_dataset", "composition")


class Brief(BaseModel):
    """What the user asked for, in typed fields the planner can act on."""

    model_config = ConfigDict(extra="ignore")
    task_kind: TaskKind
    characters: list[str] = []
    emotion: str = "neutral"
    style: str = "pixar"
    setting: str = ""
    action: str = ""
    dialogue: str = ""
    constraints: list[str] = []
    inputs: list[str] = []
    slow_motion: float = Field(default=1.0, ge=1.0, le=8.0)
    exaggeration: float = Field(default=1.0, ge=0.0, le=3.0)
    duration_s: float = Field(default=0.0, ge=0.0, le=600.0)


class Edit(BaseModel):
    """One concrete change the evaluator or the LLM proposes for the next iteration."""

    model_config = ConfigDict(extra="ignore")
    slot: str
    value: Any
    reason: str = ""


class DirectorState(TypedDict, total=False):
    run_id: str
    intent: str
    inputs: list[str]
    character: str
    brief: dict
    brief_source: dict  # field -> "keywords" | "llm"
    analysis: dict
    memory_hits: list[dict]
    recipe: str
    recipe_reason: str
    unavailable: dict  # recipe -> why it cannot be used with this catalog
    slots: dict
    graph: dict
    repairs: list[str]
    validation_errors: list[str]
    execution: dict
    evaluation: dict
    feedback: list[dict]
    iteration: int
    iterations: list[dict]  # one record per finished iteration
    llm_log: list[dict]  # every prompt and raw answer
    tokens: int
    llm_seconds: float
    planning_seconds: float
    started: float
    elapsed_s: float  # wall time spent in earlier processes (resume keeps counting)
    status: str  # running | approved | budget | failed | invalid | llm_timeout
    message: str
    files: list[str]
    step_times: dict
    notes: list[str]
