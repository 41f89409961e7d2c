"""The documentation's examples run, and generated pages are current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message

REPO = Path(__file__).resolve().parents[1]


GUIDE = REPO / "docs" / "embedding.md"


def guide_examples() -> dict[str, str]:
    """The guide's code blocks that are example files: file name -> the code shown."""
    blocks = re.findall(r"```python\n# examples/(\S+)\n(.*?)```", GUIDE.read_text(), re.S)
    return dict(blocks)


def run_example(name: str, home: Path, model: ScriptedModelServer) -> str:
    """Run ``examples/NAME`` on a CODEX_HOME whose config.toml points at the scripted model."""
    provider = ", ".join(
        [
            'name = "mock"',
            f'base_url = "{model.base_url}"',
            'wire_api = "responses"',
            f'env_key = "{model.env_key}"',
            "request_max_retries = 0",
            "stream_max_retries = 0",
        ]
    )
    home.mkdir()
    top = 'model_provider = "mock"\nmodel = "mock-model"\n'
    (home / "config.toml").write_text(f"{top}\n[model_providers]\nmock = {{ {provider} }}\n")
    env = {key: value for key, value in os.environ.items() if key != "CODEX_HOME"}
    env[model.env_key] = model.api_key
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), str(home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_every_example_is_shown_as_it_is() -> None:
    examples = guide_examples()
    assert sorted(examples) == sorted(path.name for path in (REPO / "examples").glob("*.py"))
    for name, code in examples.items():
        assert code in (REPO / "examples" / name).read_text(), f"docs/embedding.md: {name}"


def test_the_sync_example_runs(codex_model_server: ScriptedModelServer, tmp_path: Path) -> None:
    codex_model_server.add(message("Hello!"), message("Bonjour !", chunks=["Bon", "jour !"]))
    out = run_example("embed.py", tmp_path / "home", codex_model_server)
    lines = out.splitlines()
    assert lines[:3] == ["answer: Hello!", "items: ['userMessage', 'agentMessage']", "tokens: 15"]
    assert lines[3:5] == ["Bonjour !", "turn completed"]
    assert lines[5].startswith("threads: ['") and len(lines) == 6
    assert codex_model_server.requests[1].input_texts() == ["Say hello.", "And now in French?"]


def test_the_async_example_runs(codex_model_server: ScriptedModelServer, tmp_path: Path) -> None:
    touch = {"cmd": "touch made.txt", "sandbox_permissions": "require_escalated"}
    rm = {"cmd": "rm -rf /tmp/x", "sandbox_permissions": "require_escalated"}
    codex_model_server.add(
        ModelResponse([function_call("exec_command", touch, call_id="c1")]),
        ModelResponse([function_call("exec_command", rm, call_id="c2")]),
        message("Created made.txt; the other command was refused."),
    )
    out = run_example("embed_async.py", tmp_path / "home", codex_model_server)
    assert out.splitlines() == [
        "asked to run: /bin/bash -lc 'touch made.txt'",
        "asked to run: /bin/bash -lc 'rm -rf /tmp/x'",
        "answer: Created made.txt; the other command was refused.",
        "resumed: True",
        "error: -32600 invalid thread id: 'not-a-thread-id' is not a UUID",
    ]


def test_an_example_without_a_home_leaves_the_users_alone(tmp_path: Path) -> None:
    """Run as documented, with no argument: a temporary CODEX_HOME, never ~/.codex."""
    env = {key: value for key, value in os.environ.items() if key != "CODEX_HOME"}
    env["HOME"] = str(tmp_path)
    completed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "host_plugin.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    home = completed.stdout.splitlines()[0].removeprefix("codex home: ")
    assert Path(home).name.startswith("codex-home-") and not home.startswith(str(tmp_path))
    assert not (tmp_path / ".codex").exists()


def test_the_host_plugin_example_runs(
    codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    out = run_example("host_plugin.py", tmp_path / "home", codex_model_server)
    assert out.splitlines() == [f"codex home: {tmp_path / 'home'}", "{'host': 'my-app 2.0'}"]


def test_protocol_coverage_page_is_current() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from protocol_coverage import DOC, render
    finally:
        sys.path.pop(0)
    assert DOC.read_text() == render(), "run: python scripts/protocol_coverage.py"
