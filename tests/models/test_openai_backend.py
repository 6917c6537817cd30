"""OpenAICompatibleBackend against a real server on 127.0.0.1: llama-cpp-python's own
OpenAI-compatible server running the embedded model, started and stopped by a fixture."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

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

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
API_KEY = "test-key-not-secret"
GREEDY = GenerationSettings(temperature=0.0, seed=3, max_tokens=40)
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
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


def test_model_is_discovered_and_answers(backend: OpenAICompatibleBackend) -> None:
    assert backend.model == "smollm2"
    pieces: list[str] = []
    result = backend.chat(QUESTION, GREEDY, on_text=pieces.append)
    assert "Paris" in result.text
    assert len(pieces) > 1 and "".join(pieces) == result.text  # it streamed
    assert result.completion_tokens > 0


def test_schema_constrained_output(backend: OpenAICompatibleBackend) -> None:
    schema = action_schema([])
    result = backend.chat(QUESTION, GREEDY, response_schema=schema)
    jsonschema.validate(json.loads(result.text), schema)


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
    assert result.cancelled and len(pieces) == 3


def test_token_counting_uses_the_servers_tokenizer(backend: OpenAICompatibleBackend, smol) -> None:
    text = "Jackdaws are clever birds of the crow family."
    assert backend.count_tokens(text) == len(smol._llama.tokenize(text.encode(), add_bos=False))


def test_wrong_api_key_is_a_server_error(server_url: str) -> None:
    with pytest.raises(ServerError, match=r"401|403"):
        OpenAICompatibleBackend(server_url, api_key="wrong")


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
