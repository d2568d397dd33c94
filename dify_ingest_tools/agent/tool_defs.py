"""The agent tool set's settings and the neutral shape of one tool, declared once.

`ToolsetSettings` is the one declaration of the tool set's settings (names, types, defaults,
bounds): `DifyToolset` takes them, `dify_ingest_tools.langchain.DifyKnowledgeToolkit`
inherits them as its fields, the LlamaIndex tool specs and the MCP server pass them through.
`ToolDefinition` is one tool as every framework renders it: the name, the description the
model reads, the argument model and its JSON schema (``input_schema``), the result model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from typing_extensions import Self

from dify_ingest_tools._base.inputs import check_dataset_id
from dify_ingest_tools.agent.tool_answers import MIN_HIT_CHARS
from dify_ingest_tools.readiness.heal import OnStall
from dify_ingest_tools.readiness.policy import OnEmpty, OnPaused


class ToolsetSettings(BaseModel):
    """How the agent tools behave: what they may touch, how long they wait, how much they say.

    Raises:
        ValueError: (a pydantic ``ValidationError``) for a malformed dataset id, both
            ``dataset_id`` and ``datasets``, or a bound out of range.
    """

    # An unknown setting is a typo, not something to ignore.
    model_config = ConfigDict(extra="forbid")

    dataset_id: str | None = Field(
        default=None,
        description="Bind every tool to this knowledge base: the model never passes a dataset_id.",
    )
    datasets: tuple[str, ...] | None = Field(
        default=None,
        description=(
            "When not bound: the only knowledge bases the model may name (an enum in the "
            "schemas; any other id is refused). None: any the key can reach."
        ),
    )
    max_wait_seconds: float = Field(
        default=120.0,
        gt=0,
        description="The longest wait_for_indexing call, whatever the model asks.",
    )
    default_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The wait when the model gives no timeout_seconds (at most max_wait_seconds).",
    )
    max_upload_wait_seconds: float = Field(
        default=30.0, gt=0, description="The longest wait upload_text may add (its wait_seconds)."
    )
    search_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long search waits for uploads made through these tools (0: never).",
    )
    top_k: int = Field(default=4, description="Passages per search unless the model asks for more.")
    max_top_k: int = Field(default=10, description="The most passages a model may ask for.")
    hit_chars: int = Field(
        default=800, description="Characters of one passage in a search answer (cut beyond)."
    )
    answer_chars: int = Field(
        default=4000, description="The longest text of any answer, in characters."
    )
    indexing_technique: str | None = Field(
        default=None, description="Sent with every upload (None: the knowledge base's own)."
    )
    poll_interval: float = Field(default=1.0, description="First gap between polls of a wait.")
    max_poll_interval: float = Field(default=5.0, description="Longest gap between polls.")
    stall_timeout: float | None = Field(
        default=None, description="Answer STALLED when nothing changes for this long (None: off)."
    )
    not_found_grace: float = Field(
        default=10.0,
        description="Seconds a just-uploaded batch may be unknown to Dify before a wait says so.",
    )
    on_paused: OnPaused = Field(
        default="fail",
        description=(
            "'fail': a paused document is answered at once (only Dify's console resumes it); "
            "'wait': waits on."
        ),
    )
    on_empty: OnEmpty = Field(
        default="raise",
        description=(
            "A document indexed with 0 chunks is answered EMPTY ('indexed, but produced no "
            "chunks — nothing will be found') whatever this says; 'warn' also logs it."
        ),
    )
    on_stall: OnStall = Field(
        default="raise",
        description=(
            "'resubmit': a stalled upload of these tools is sent again once by name and the "
            "wait goes on (needs stall_timeout); the answer says so."
        ),
    )
    summaries: bool = Field(
        default=False,
        description="Waits also wait for the documents' summaries (summary indexing).",
    )
    allow_replace: bool = Field(
        default=False,
        description=(
            "Let upload_text replace a document of the same name these tools did not create "
            "(by default such an upload is refused with a tool error naming the document)."
        ),
    )

    @field_validator("dataset_id")
    @classmethod
    def _check_dataset_id(cls, value: str | None) -> str | None:
        return None if value is None else check_dataset_id(value)

    @field_validator("datasets")
    @classmethod
    def _check_datasets(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("datasets is empty: name at least one knowledge base, or pass None")
        return tuple(check_dataset_id(dataset) for dataset in value)

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        if self.dataset_id is not None and self.datasets:
            raise ValueError("pass dataset_id (one bound knowledge base) or datasets, not both")
        if not 1 <= self.top_k <= self.max_top_k:
            raise ValueError("top_k must be between 1 and max_top_k")
        if self.hit_chars < MIN_HIT_CHARS or self.answer_chars < self.hit_chars:
            raise ValueError(f"need {MIN_HIT_CHARS} <= hit_chars <= answer_chars")
        return self

    @classmethod
    def of(cls, source: Any) -> ToolsetSettings:
        """The settings ``source`` holds as attributes (e.g. a toolkit that inherits them)."""
        return cls(**{name: getattr(source, name) for name in cls.model_fields})


DEFAULTS = ToolsetSettings()
"""The default settings (adapters whose keywords predate the tool set default to these)."""


def settings_error(error: ValidationError) -> ValueError:
    """Pydantic's errors about settings as one line (no input values echoed back)."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return ValueError("; ".join(parts))


@dataclass(frozen=True)
class ToolDefinition:
    """One tool as a model sees it, whatever the framework.

    Attributes:
        name: The name in this rendering (e.g. ``dify_search`` for LangChain).
        base_name: The tool set's own name (``search``), what `DifyToolset.run` takes.
        description: What the tool is for, written for the model.
        args_model: The arguments; adapters validate with it.
        output_model: The structured result (``ToolResult.data`` validates against it).
    """

    name: str
    base_name: str
    description: str
    args_model: type[BaseModel]
    output_model: type[BaseModel]

    @cached_property
    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments, as every framework hands it to the model.

        Without pydantic's ``title`` keys (``"Dataset Id"``, ``"UploadTextArgs"``): they tell a
        model nothing, and LangChain strips them from what it sends anyway, so the schema is
        the same, key for key, in LangChain, LlamaIndex and MCP.
        """
        schema: dict[str, Any] = _untitled(self.args_model.model_json_schema())
        return schema


def _untitled(schema: Any) -> Any:
    """``schema`` without the ``title`` keys pydantic adds (a property named title stays)."""
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: (
            {name: _untitled(prop) for name, prop in value.items()}
            if key == "properties"
            else _untitled(value)
        )
        for key, value in schema.items()
        if key != "title"
    }
