"""One tool definition, three frameworks: what a model is shown is the same, word for word.

Each rendering is read the way its framework hands it to a model: LangChain's
``convert_to_openai_tool`` (what ``bind_tools`` sends), LlamaIndex's ``to_openai_tool`` (what its
function-calling LLMs send) and the MCP server's ``tools/list`` through the official client, in
memory. Per tool, the name, the description and the argument JSON schema are compared with the
tool set's definition (`DifyToolset.definitions`), without normalising anything:

* LangChain names carry the ``dify_`` prefix, and so do the sibling tools a description names
  (``upload_text`` says "pass the batch to dify_indexing_status"): the definition rendered with
  that prefix; apart from the names, its words are those of the unprefixed one.
* `DifyIndexingToolSpec` names its status tool ``get_indexing_status`` (its public spec
  function, older than the tool set); description and schema are ``indexing_status``'s.
* The schema is `ToolDefinition.input_schema`: pydantic's JSON schema without its ``title``
  keys, which LangChain strips from whatever it sends; every framework gets that dict.

The settings are declared once (`ToolsetSettings`): the toolkit inherits them, the tool specs
pass them through, and the standalone tools' keywords default to them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pytest.importorskip("mcp.server.mcpserver")

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from llama_index.core.tools import FunctionTool
from mcp import Client

from dify_ingest_tools import AsyncDifyKnowledgeClient, DifyKnowledgeClient
from dify_ingest_tools.agent.tool_defs import ToolsetSettings
from dify_ingest_tools.agent.tool_schemas import TOOL_NAMES
from dify_ingest_tools.agent.toolkit import DifyToolset
from dify_ingest_tools.langchain import (
    DifyIndexingStatusTool,
    DifyKnowledgeToolkit,
    DifyWaitForIndexingTool,
)
from dify_ingest_tools.llama_index import DifyIndexingToolSpec, DifyKnowledgeToolSpec
from dify_ingest_tools.mcp_server import build_server
from dify_ingest_tools.testing import DifySimulator

DATASET = "7789611a-7d24-4b75-ab16-a005f3cbd9b4"
OTHER = "eb1167b3-67a9-4378-bc65-c1e582e2e662"

Shown = dict[str, dict[str, Any]]
"""Tool set name -> ``{"name", "description", "parameters"}`` as the model gets them."""

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "bound": {"dataset_id": DATASET},
    "open": {},
    "allow-list": {"datasets": [DATASET, OTHER]},
    "tuned": {
        "dataset_id": DATASET,
        "max_wait_seconds": 45.0,
        "default_wait_seconds": 12.0,
        "max_upload_wait_seconds": 5.0,
        "search_wait_seconds": 0.0,
        "top_k": 2,
        "max_top_k": 3,
        "allow_replace": True,
    },
}


@pytest.fixture(scope="module")
def idle_sim() -> DifySimulator:
    return DifySimulator()


@pytest.fixture(scope="module")
def blocking(idle_sim: DifySimulator) -> Iterator[DifyKnowledgeClient]:
    """A client for the adapters to hold; listing tools sends nothing."""
    with idle_sim.serve_in_thread() as url, DifyKnowledgeClient(idle_sim.api_key, url) as client:
        yield client


def _langchain(tools: list[BaseTool]) -> Shown:
    shown = {}
    for tool in tools:
        function = convert_to_openai_tool(tool)["function"]
        shown[function["name"].removeprefix("dify_")] = function
    return shown


def _llama_index(tools: list[FunctionTool], renamed: dict[str, str] | None = None) -> Shown:
    shown = {}
    for tool in tools:
        function = tool.metadata.to_openai_tool()["function"]
        shown[(renamed or {}).get(function["name"], function["name"])] = function
    return shown


@asynccontextmanager
async def _mcp(toolset: DifyToolset, url: str, api_key: str) -> AsyncIterator[Shown]:
    async with (
        AsyncDifyKnowledgeClient(api_key, url) as client,
        Client(build_server(toolset, client)) as mcp,
    ):
        listed = await mcp.list_tools()
    yield {
        tool.name: {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.input_schema,
        }
        for tool in listed.tools
    }


def _expected(toolset: DifyToolset, prefix: str) -> Shown:
    return {
        definition.base_name: {
            "name": definition.name,
            "description": definition.description,
            "parameters": definition.input_schema,
        }
        for definition in toolset.definitions(prefix)
    }


def _standalone(settings: dict[str, Any], client: DifyKnowledgeClient) -> dict[str, Shown]:
    """The standalone status and wait tools, built with their own keywords for ``settings``."""
    defaults = ToolsetSettings()
    waits = {
        "max_timeout_seconds": settings.get("max_wait_seconds", defaults.max_wait_seconds),
        "default_timeout_seconds": settings.get(
            "default_wait_seconds", defaults.default_wait_seconds
        ),
    }
    dataset = {"dataset_id": settings["dataset_id"]} if "dataset_id" in settings else {}
    langchain = _langchain(
        [
            DifyIndexingStatusTool(client=client, **dataset),
            DifyWaitForIndexingTool(client=client, **waits, **dataset),
        ]
    )
    spec = DifyIndexingToolSpec(client=client, **waits, **dataset)
    llama_index = _llama_index(
        spec.to_tool_list(), renamed={"get_indexing_status": "indexing_status"}
    )
    return {"LangChain tools": langchain, "DifyIndexingToolSpec": llama_index}


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
async def test_every_framework_shows_the_tool_set_word_for_word(
    configuration: str, idle_sim: DifySimulator, blocking: DifyKnowledgeClient
) -> None:
    settings = CONFIGURATIONS[configuration]
    toolset = DifyToolset(**settings)
    plain, prefixed = _expected(toolset, ""), _expected(toolset, "dify_")
    assert list(plain) == list(TOOL_NAMES)

    renderings: dict[str, tuple[Shown, Shown]] = {
        "LangChain toolkit": (
            _langchain(DifyKnowledgeToolkit(client=blocking, **settings).get_tools()),
            prefixed,
        ),
        "LlamaIndex tool spec": (
            _llama_index(DifyKnowledgeToolSpec(client=blocking, **settings).to_tool_list()),
            plain,
        ),
    }
    async with _mcp(toolset, blocking.base_url, idle_sim.api_key) as mcp:
        renderings["MCP server"] = (mcp, plain)
    if "datasets" not in settings:  # the standalone tools take no allow-list
        standalone = _standalone(settings, blocking)
        expected = {"LangChain tools": prefixed, "DifyIndexingToolSpec": plain}
        for name, shown in standalone.items():
            subset = {
                tool: expected[name][tool] for tool in ("indexing_status", "wait_for_indexing")
            }
            if name == "DifyIndexingToolSpec":
                subset["indexing_status"] = {
                    **subset["indexing_status"],
                    "name": "get_indexing_status",
                }
            renderings[name] = (shown, subset)

    for framework, (shown, wanted) in renderings.items():
        assert list(shown) == list(wanted), framework
        for tool, function in shown.items():
            for key in ("name", "description", "parameters"):
                assert function[key] == wanted[tool][key], f"{framework}: {tool}'s {key}"

    # Between the prefixed and the plain rendering, only the tool names differ.
    for tool in TOOL_NAMES:
        words = re.sub(r"\bdify_(?=\w)", "", prefixed[tool]["description"])
        assert words == plain[tool]["description"]
        assert prefixed[tool]["parameters"] == plain[tool]["parameters"]


def test_the_schemas_carry_what_frameworks_used_to_drop(blocking: DifyKnowledgeClient) -> None:
    # LangChain rebuilt the argument model (losing the allow-list's enum and
    # additionalProperties) and LlamaIndex filtered the schema's keys (losing
    # additionalProperties): a model was told less than the tools enforce.
    toolkit = DifyKnowledgeToolkit(client=blocking, datasets=[DATASET, OTHER])
    spec = DifyKnowledgeToolSpec(client=blocking, datasets=[DATASET, OTHER])
    for shown in (_langchain(toolkit.get_tools()), _llama_index(spec.to_tool_list())):
        for function in shown.values():
            parameters = function["parameters"]
            assert parameters["additionalProperties"] is False
            assert parameters["properties"]["dataset_id"]["enum"] == [DATASET, OTHER]
            assert "title" not in parameters


# -- the settings, declared once -----------------------------------------------------------------

#: A value other than the default for every setting (``datasets`` apart: it excludes
#: ``dataset_id``).
NOT_DEFAULT: dict[str, Any] = {
    "dataset_id": DATASET,
    "max_wait_seconds": 40.0,
    "default_wait_seconds": 20.0,
    "max_upload_wait_seconds": 7.0,
    "search_wait_seconds": 3.0,
    "top_k": 3,
    "max_top_k": 6,
    "hit_chars": 300,
    "answer_chars": 2000,
    "indexing_technique": "economy",
    "poll_interval": 0.5,
    "max_poll_interval": 2.0,
    "stall_timeout": 60.0,
    "not_found_grace": 4.0,
    "on_paused": "wait",
    "on_empty": "warn",
    "on_stall": "resubmit",
    "summaries": True,
    "allow_replace": True,
}


def test_every_setting_has_a_value_to_test_with() -> None:
    defaults = ToolsetSettings()
    assert set(NOT_DEFAULT) | {"datasets"} == set(ToolsetSettings.model_fields)
    for name, value in NOT_DEFAULT.items():
        assert getattr(defaults, name) != value, name


def test_the_toolkit_declares_the_tool_set_settings_and_nothing_else() -> None:
    toolkit_fields = DifyKnowledgeToolkit.model_fields
    assert set(toolkit_fields) - set(ToolsetSettings.model_fields) == {
        "api_key",
        "base_url",
        "client",
    }
    for name, field in ToolsetSettings.model_fields.items():
        mine = toolkit_fields[name]
        assert (mine.annotation, mine.default, mine.description, mine.metadata) == (
            field.annotation,
            field.default,
            field.description,
            field.metadata,
        ), name


@pytest.mark.parametrize("binding", ["dataset_id", "datasets"])
def test_every_setting_reaches_the_tool_set_in_every_framework(
    binding: str, blocking: DifyKnowledgeClient
) -> None:
    values = dict(NOT_DEFAULT)
    if binding == "datasets":
        values["datasets"] = [values.pop("dataset_id"), OTHER]
    wanted = ToolsetSettings(**values)
    toolkit = DifyKnowledgeToolkit(client=blocking, **values)
    assert toolkit.toolset.settings == wanted
    assert all(getattr(toolkit, name) == getattr(wanted, name) for name in values)
    assert DifyKnowledgeToolSpec(client=blocking, **values).toolset.settings == wanted
    assert DifyToolset(**values).settings == wanted


def test_the_standalone_tools_default_to_the_tool_set_settings(
    blocking: DifyKnowledgeClient,
) -> None:
    defaults = ToolsetSettings()
    spec = inspect.signature(DifyIndexingToolSpec).parameters
    assert spec["max_timeout_seconds"].default == defaults.max_wait_seconds
    assert spec["default_timeout_seconds"].default == defaults.default_wait_seconds
    for name in ("poll_interval", "max_poll_interval", "stall_timeout", "not_found_grace"):
        assert spec[name].default == getattr(defaults, name), name
    assert spec["on_paused"].default == defaults.on_paused
    wait = DifyWaitForIndexingTool(client=blocking)
    assert wait.max_timeout_seconds == defaults.max_wait_seconds
    assert wait.default_timeout_seconds == defaults.default_wait_seconds
    assert wait.on_paused == defaults.on_paused
    # Given the toolkit's tool set, the tool shows the toolkit's settings.
    toolkit = DifyKnowledgeToolkit(client=blocking, **NOT_DEFAULT)
    in_kit = next(t for t in toolkit.get_tools() if isinstance(t, DifyWaitForIndexingTool))
    assert in_kit.toolset is toolkit.toolset
    assert (in_kit.max_timeout_seconds, in_kit.poll_interval, in_kit.on_paused) == (
        40.0,
        0.5,
        "wait",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # pydantic's own message for the toolkit (a pydantic model), one line elsewhere.
        ({"max_wait": 5}, r"max_wait\W+Extra inputs are not permitted"),  # a typo
        ({"max_wait_seconds": 0}, r"max_wait_seconds\W+Input should be greater than 0"),
        ({"datasets": DATASET}, r"datasets\W+Input should be a valid tuple"),
        ({"dataset_id": DATASET, "datasets": [OTHER]}, "not both"),
        ({"top_k": 11}, "top_k must be between 1 and max_top_k"),
    ],
)
def test_a_wrong_setting_is_refused_by_every_framework_alike(
    options: dict[str, Any], message: str, blocking: DifyKnowledgeClient
) -> None:
    # Misspelt, a setting was silently ignored by the LangChain toolkit.
    with pytest.raises(ValueError, match=message) as raised:
        DifyToolset(**options)
    assert "\n" not in str(raised.value)  # one line, e.g. for the CLI
    with pytest.raises(ValueError, match=message):
        DifyKnowledgeToolkit(client=blocking, **options)
    with pytest.raises(ValueError, match=message):
        DifyKnowledgeToolSpec(client=blocking, **options)
