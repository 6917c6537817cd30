"""OpenAICompatibleBackend against servers on 127.0.0.1: llama-cpp-python's own
OpenAI-compatible server running the embedded model (started and stopped by a fixture), and a
scripted server that misbehaves on purpose (tests/models/fake_openai_server.py).

Tests of the real model assert what holds for any output it may give (valid by the schema,
non-empty, streamed, cancelled on time), never one machine's exact greedy text."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest

from agent_core.actions import action_schema
from agent_core.config import Config, Paths
from agent_core.services import Services
from models.chat import GenerationSettings
from models.discovery import embedded_chat_model
from models.errors import ServerError, ServerUnreachableError
from models.openai_backend import OpenAICompatibleBackend
from models.secrets import SecretStore
from tests.models.fake_openai_server import FakeServer, fake_server

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-not-secret"
GREEDY = GenerationSettings(temperature=0.0, seed=3, max_tokens=40)
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]
# Prompts that tempt a model to put raw newlines, quotes and braces inside a JSON string.
TEMPTING = [
    QUESTION,
    [{"role": "user", "content": "Write a poem of four short lines about the sea."}],
    [{"role": "user", "content": 'Show a Python dict literal with the key "a", then explain it.'}],
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    # A file, not a pipe: llama.cpp logs enough to fill a pipe and block the server.
    log = open(log_path, "wb")  # noqa: SIM115 (closed after the server stops)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(embedded_chat_model()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--api_key",
            API_KEY,
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            if httpx.get(f"{url}/models", headers=headers, timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the llama_cpp server did not start within 90 s")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def backend(server_url: str) -> Iterator[OpenAICompatibleBackend]:
    b = OpenAICompatibleBackend(server_url, api_key=API_KEY)
    yield b
    b.close()


@pytest.mark.real_model
@pytest.mark.slow
def test_model_is_discovered_and_answers(backend: OpenAICompatibleBackend) -> None:
    assert backend.model == "smollm2"
    pieces: list[str] = []
    result = backend.chat(QUESTION, GREEDY, on_text=pieces.append)
    assert result.text.strip()  # some answer; which words depend on the CPU's arithmetic
    assert len(pieces) > 1 and "".join(pieces) == result.text  # it streamed
    assert 0 < result.completion_tokens <= GREEDY.max_tokens
    assert result.finish_reason in ("stop", "length")


@pytest.mark.real_model
@pytest.mark.slow
def test_the_agent_runs_end_to_end_through_the_real_server(
    backend: OpenAICompatibleBackend, tmp_path: Path
) -> None:
    """The whole conversation protocol through llama-cpp-python's server: a server gives no
    chat template, so the agent decides (schema-held, via the server's grammar), calls the
    tool it chose, and answers in free text. Asserted: what holds for any output."""
    from agent_core.agent import Agent
    from agent_core.memory_db import open_memory_db
    from agent_core.prompting import PromptBuilder
    from agent_core.protocols import DECIDE
    from agent_core.traces import TraceStore
    from tests.benchmarks.bench_answers import leak_kind
    from tools.base import ToolRegistry
    from tools.builtins.calculator import make_calculator
    from tools.executor import ToolExecutor

    agent = Agent(
        backend,
        ToolExecutor(ToolRegistry([make_calculator()])),
        TraceStore(open_memory_db(tmp_path / "memory.db")),
        PromptBuilder(count_tokens=backend.count_tokens),
        GenerationSettings(temperature=0.0, seed=3, max_tokens=64),
        max_steps=3,
    )
    streamed: list[str] = []
    trace = agent.run("Use the calculator: what is 17 times 23?", on_text=streamed.append)
    assert trace.extra["protocol"] == DECIDE.name
    assert trace.status == "ok" and trace.final_answer
    assert leak_kind(trace.final_answer) is None, trace.final_answer
    for step in trace.steps:
        decision = (step.response_schema or {}).get("decision")
        if decision and step.tool_name:  # a call it decided on was valid by the schema
            jsonschema.validate({"tool": step.tool_name, "arguments": step.tool_args}, decision)
            assert step.tool_outcome["status"] in ("ok", "error")
    assert trace.extra["model_calls"] >= 2  # a decision, then a free answer
    assert not trace.extra.get("empty_answer") or not streamed  # what streamed was the answer


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.parametrize("messages", TEMPTING, ids=["question", "poem", "dict"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_schema_constrained_output_is_always_valid_json(
    backend: OpenAICompatibleBackend, messages: list, temperature: float
) -> None:
    schema = action_schema([])
    settings = GenerationSettings(temperature=temperature, seed=7, max_tokens=160)
    result = backend.chat(messages, settings, response_schema=schema)
    assert_no_raw_control_characters_in_strings(result.text)
    if result.finish_reason != "length":  # cut off, half an object cannot parse
        jsonschema.validate(json.loads(result.text), schema)  # strict json.loads


def assert_no_raw_control_characters_in_strings(text: str) -> None:
    """What JSON forbids inside strings, checked on a whole or a cut-off object alike."""
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            assert ch >= " " and ch != "\x7f", f"raw {ch!r} in a string at {i}: {text!r}"
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True


@pytest.mark.real_model
@pytest.mark.slow
def test_cancel_between_tokens(backend: OpenAICompatibleBackend) -> None:
    cancel = threading.Event()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()

    story = [{"role": "user", "content": "Tell a long story about a jackdaw."}]
    result = backend.chat(
        story, GenerationSettings(temperature=0, max_tokens=200), on_text=on_text, cancel=cancel
    )
    # Cancelled on time: not a piece more once Stop was pressed (or it had already ended).
    assert len(pieces) <= 3 and result.text == "".join(pieces)
    assert result.cancelled or (len(pieces) < 3 and result.finish_reason == "stop")


@pytest.mark.real_model
@pytest.mark.slow
def test_token_counting_uses_the_servers_tokenizer(backend: OpenAICompatibleBackend, smol) -> None:
    text = "Jackdaws are clever birds of the crow family."
    assert backend.count_tokens(text) == len(smol._llama.tokenize(text.encode(), add_bos=False))
    assert not backend.token_counts_estimated


@pytest.mark.real_model
@pytest.mark.slow
def test_wrong_api_key_is_a_server_error(server_url: str) -> None:
    with pytest.raises(ServerError, match=r"401|403"):
        OpenAICompatibleBackend(server_url, api_key="wrong")


@pytest.mark.real_model
@pytest.mark.slow
def test_server_error_is_reported(backend: OpenAICompatibleBackend) -> None:
    with pytest.raises(ServerError, match="answered"):
        backend.chat([{"role": "wizard", "content": "x"}], GREEDY)


def test_unreachable_server() -> None:
    # Without a model name the backend asks the server for one, so it finds out at once.
    with pytest.raises(ServerUnreachableError, match="Cannot reach") as err:
        OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}/v1")
    assert "running" in str(err.value)


def test_unreachable_server_on_first_request() -> None:
    backend = OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}/v1", model="m")
    with pytest.raises(ServerUnreachableError):
        backend.chat(QUESTION, GREEDY)


@pytest.mark.real_model
@pytest.mark.slow
def test_services_read_the_key_from_the_keyring(server_url: str) -> None:
    SecretStore().set("my-server", API_KEY)
    config = Config()
    config.model.backend = "openai"
    config.server.base_url = server_url
    config.server.api_key_name = "my-server"
    services = Services(Paths.from_env(), config)
    try:
        trace = services.agent.run("Say hello.")
        assert trace.status in ("ok", "budget_exhausted")
        assert trace.model["architecture"] == "remote"
        assert API_KEY not in json.dumps(trace.to_dict())  # never in the trace
        services.save_config()
        assert API_KEY not in services.paths.config_file.read_text()
    finally:
        services.close()


# -- a scripted server that misbehaves on purpose ------------------------------------------------
KEY = "plain-words-key-4711"  # looks like no known key format: only exact redaction catches it


def test_an_error_that_echoes_the_key_is_redacted_before_anyone_sees_it() -> None:
    with fake_server(FakeServer(api_key="the-right-key")) as server:
        with pytest.raises(ServerError, match="401") as err:
            OpenAICompatibleBackend(server.url, api_key=KEY)
        backend = OpenAICompatibleBackend(server.url, model="m", api_key=KEY)
        with pytest.raises(ServerError, match="401") as err2:
            backend.chat(QUESTION, GREEDY)
        backend.close()
    for error in (err.value, err2.value):
        assert "Invalid API key" in str(error) and "[redacted]" in str(error)
        assert KEY not in str(error) and KEY not in repr(error.args)
        assert (error.__cause__ is None and error.__context__ is None) or KEY not in str(
            error.__context__
        )


def test_a_run_stores_and_prints_no_echoed_key(capsys: pytest.CaptureFixture[str]) -> None:
    from agent_core import cli

    with fake_server(FakeServer(api_key="the-right-key")) as server:
        SecretStore().set("my-server", KEY)
        paths = Paths.from_env()
        config = Config()
        config.model.backend = "openai"
        config.server.base_url = server.url
        config.server.model = "fake-model"  # no discovery: the first request fails
        config.server.api_key_name = "my-server"
        services = Services(paths, config)
        try:
            try:
                trace = services.agent.run("Say hello.")
            except ServerError as exc:  # raised, or recorded on the run: either way redacted
                assert "401" in str(exc) and KEY not in str(exc)
            else:
                assert trace.status == "error" and "401" in (trace.error or "")
            services.save_config()
        finally:
            services.close()
        code = cli.main(["ask", "Say hello."])
    assert code != 0
    captured = capsys.readouterr()
    assert "401" in captured.err and KEY not in captured.err + captured.out
    for db in paths.data_dir.glob("*.db*"):
        assert KEY.encode() not in db.read_bytes(), db


def test_llama_cpp_python_server_gets_a_grammar_without_raw_control_characters() -> None:
    """llama-cpp-python's server refuses json_schema and turns json_object + schema into a
    grammar that lets raw newlines into strings; a grammar of ours does not."""

    def reply(body: dict) -> tuple[int, object]:
        if body.get("response_format", {}).get("type") == "json_schema":
            return 500, {"error": {"message": "1 validation error: body.response_format.type"}}
        return 200, json.dumps({"action": "final_answer", "answer": "Paris"})

    with fake_server(FakeServer(reply=reply)) as server:
        backend = OpenAICompatibleBackend(server.url)
        schema = action_schema([])
        for _ in range(2):
            result = backend.chat(QUESTION, GREEDY, response_schema=schema)
            jsonschema.validate(json.loads(result.text), schema)
        backend.close()
    sent = [r["body"] for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert sent[0]["response_format"]["type"] == "json_schema"
    assert "response_format" not in sent[1] and "grammar" in sent[1]
    assert "grammar" in sent[2]  # remembered: no second refusal
    rules = dict(
        line.split(" ::= ", 1) for line in sent[1]["grammar"].splitlines() if " ::= " in line
    )
    assert rules["char"].startswith(r'[^"\\\x7F\x00-\x1F]')


def test_llama_server_gets_json_schema() -> None:
    with fake_server() as server:
        backend = OpenAICompatibleBackend(server.url)
        backend.chat(QUESTION, GREEDY, response_schema=action_schema([]))
        backend.close()
    body = server.requests[-1]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == action_schema([])


def test_a_grammar_of_ours_never_lets_a_raw_newline_into_a_string() -> None:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from models.json_grammar import json_schema_grammar

    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string", "pattern": "^x.y$"}},
        "required": ["a", "b"],
    }
    theirs = json_schema_to_gbnf(json.dumps(schema))
    ours = json_schema_grammar(schema)
    assert theirs.count("char ::=") == ours.count("char ::=") == 1
    for name in ("char", "dot"):
        rule = next(line for line in ours.splitlines() if line.startswith(f"{name} ::= "))
        assert rule.split(" ::= ")[1].startswith(r'[^"\\\x7F\x00-\x1F]')
    assert ours.replace(" ", "") != theirs.replace(" ", "")


def test_invalid_json_from_a_server_is_a_model_mistake_not_a_crash() -> None:
    from agent_core.actions import ActionError, parse_action

    broken = '{ "action" : "final_answer","answer": "France }\nThe answer is: { " }'
    with fake_server(FakeServer(reply=lambda body: (200, broken + "\x01"))) as server:
        backend = OpenAICompatibleBackend(server.url)
        result = backend.chat(QUESTION, GREEDY, response_schema=action_schema([]))
        backend.close()
    assert result.text == broken + "\x01"  # handed on as the model's reply...
    with pytest.raises((ActionError, ValueError)):
        jsonschema.validate(json.loads(result.text), action_schema([]))
        parse_action(result.text)  # ...which the agent reads as a mistake to feed back


def test_a_broken_stream_is_a_server_error() -> None:
    with fake_server(FakeServer(reply=lambda body: (200, ["Hel", "data: {not json"]))) as server:
        backend = OpenAICompatibleBackend(server.url, model="m")
        with pytest.raises(ServerError, match="broken stream"):
            backend.chat(QUESTION, GREEDY)
        backend.close()


def test_without_a_tokenize_endpoint_counts_are_estimated_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with fake_server(FakeServer(tokenize=False)) as server:
        backend = OpenAICompatibleBackend(server.url)
        with caplog.at_level("WARNING", logger="jackdaw.models"):
            counts = [backend.count_tokens(t) for t in ("hello there", "", "x" * 350, "é" * 7)]
            prompt = backend.count_prompt_tokens([{"role": "user", "content": "x" * 600}])
        backend.close()
    assert backend.token_counts_estimated
    assert counts == [2, 0, 59, 14]  # a token per 6 letters, 2 for each non-ASCII character
    assert prompt == 100 * 1.25 + 4  # a whole prompt: a 25% margin, and the role markers
    assert len([r for r in caplog.records if "tokenize" in r.getMessage()]) == 1
    probes = [r for r in server.requests if "tokenize" in r["path"]]
    assert len(probes) == 3  # each known endpoint tried once, then never again


def test_ask_works_against_a_server_without_a_tokenize_endpoint() -> None:
    # As in the report: a system block of ~3,100 characters (tools and lessons), which a real
    # tokenizer makes ~800 tokens of; counted at 3 characters a token it broke the 1,024 budget.
    with fake_server(FakeServer(tokenize=False)) as server:
        config = Config()
        config.model.backend = "openai"
        config.server.base_url = server.url
        services = Services(Paths.from_env(), config)
        try:
            builder = services.agent.builder
            tools = list(services.tool_executor.registry)
            lessons: list[str] = []
            while len(builder.system_block(tools, lessons)[0]) < 3100:
                lessons.append(f"Lesson {len(lessons)}: cite the note a fact comes from.")
            _, tokens = builder.system_block(tools, lessons)  # raised PromptTooLargeError
            assert sum(tokens.values()) <= builder.system_budget == 1024
            trace = services.agent.run("What is the capital of France?")
        finally:
            services.close()
    assert trace.status != "error", trace.error
    assert trace.final_answer


@pytest.mark.real_model
def test_estimates_are_close_and_whole_prompts_err_high(smol) -> None:
    from models.openai_backend import estimate_tokens

    texts = [
        json.dumps(action_schema([])),
        (ROOT / "models" / "openai_backend.py").read_text(),
        (ROOT / "README.md").read_text(),
        "寒鸦是一种聪明的鸟，属于鸦科。" * 10,
    ]
    with fake_server(FakeServer(tokenize=False)) as server:
        backend = OpenAICompatibleBackend(server.url)
        for text in texts:
            real = smol.count_tokens(text)
            assert 0.9 * real <= estimate_tokens(text) <= 1.15 * real  # blocks: close
            messages = [
                {"role": "system", "content": "You are Jackdaw."},
                {"role": "user", "content": text},
            ]
            assert backend.count_prompt_tokens(messages) >= smol.count_prompt_tokens(messages)
        backend.close()
