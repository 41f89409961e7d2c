"""A plugin author's whole path, from docs/writing-plugins.md's own code blocks.

The tool plugin is written from the page's blocks (so page and test cannot drift), its tests
run, its wheel is built and published in a local catalog in the page's format, and it is
hot-installed into a running server over the protocol and from the command line, where the
scripted model calls the tool in a turn. Everything installs into a throwaway venv that sees
this environment's packages, never into the repository's.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from codex_core.marketplace import scaffold
from codex_core.testing import ModelResponse, ScriptedModelServer, function_call, message
from codex_core.testing.pytest_plugin import StdioServer

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "writing-plugins.md"


def section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def plugin_files() -> dict[str, str]:
    """The tool plugin's files, from the blocks whose first line names their path."""
    blocks = re.findall(r"```(?:toml|python)\n# (\S+)\n(.*?)```", section("A tool plugin"), re.S)
    return {path: f"# {path}\n{code}" for path, code in blocks}


def catalog_entry() -> dict[str, Any]:
    """The catalog entry the page shows (for `hello`), as JSON."""
    block = re.search(r"```json\n(.*?)```", section("Publishing it in a catalog"), re.S)
    assert block is not None
    entry: dict[str, Any] = json.loads(block.group(1))["plugins"][0]
    return entry


def make_venv(target: Path) -> Path:
    """A venv whose interpreter sees this environment's packages; its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(target)],
        check=True,
    )
    python = target / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "zz_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def ask(server: StdioServer, folder: Path, model: ScriptedModelServer) -> list[Any]:
    """A turn in which the model calls count_words on notes.txt: what the tool answered."""
    model.add(
        ModelResponse([function_call("count_words", {"path": "notes.txt"}, call_id="c1")]),
        message("Counted."),
    )
    before = len(model.requests)
    thread = server.result("thread/start", {"cwd": str(folder)})["thread"]
    prompt = [{"type": "text", "text": "How long is notes.txt?", "text_elements": []}]
    server.result("turn/start", {"threadId": thread["id"], "input": prompt})
    done = server.wait_notification("turn/completed", timeout=60)
    assert done["params"]["turn"]["status"] == "completed"
    second = model.requests[before + 1]
    return [i["output"] for i in second.body["input"] if i["type"] == "function_call_output"]


def test_the_docs_tool_plugin_from_source_to_a_running_server(
    server_env: dict[str, str], codex_model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    files = plugin_files()
    # The page's layout is the scaffold's (`plugin new wordcount --tool`).
    assert sorted([*files, "README.md"]) == sorted(scaffold.files_for("wordcount", "tool"))
    root = tmp_path / "codex-plugin-wordcount"
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    (root / "README.md").write_text("# codex-plugin-wordcount\n\nGives the model count_words.\n")

    python = make_venv(tmp_path / "venv")
    env = {key: value for key, value in server_env.items() if key != "PYTHONPATH"}
    env[codex_model_server.env_key] = codex_model_server.api_key

    # Package it, and run its own tests with it installed.
    run(python, "-m", "pip", "wheel", "--no-deps", "-w", "dist", ".", cwd=root, env=env)
    (wheel,) = (root / "dist").glob("*.whl")
    assert wheel.name == "codex_plugin_wordcount-0.1.0-py3-none-any.whl"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel, cwd=root, env=env)
    tests = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=root, env=env)
    assert "2 passed" in tests
    run(python, "-m", "pip", "uninstall", "-y", "codex-plugin-wordcount", cwd=root, env=env)

    # Publish it in a local catalog, in the page's format.
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copy(wheel, catalog)
    entry = catalog_entry()
    entry["name"] = "wordcount"
    entry["description"] = "count_words for the model"
    entry["source"]["url"] = wheel.name
    entry["source"]["sha256"] = hashlib.sha256(wheel.read_bytes()).hexdigest()
    document = {"name": "my-plugins", "plugins": [entry]}
    (catalog / "marketplace.json").write_text(json.dumps(document, indent=2))
    cli = (python, "-m", "codex_core")
    assert "added marketplace my-plugins" in run(
        *cli, "marketplace", "add", "./catalog", cwd=tmp_path, env=env
    )

    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("one two three\nfour")
    server = StdioServer(
        [str(python), "-m", "codex_core", *codex_model_server.config_args()], env, tmp_path
    )
    try:
        server.initialize()
        # Over the protocol (an installAttemptId opts this client in to codexCore/plugins/*).
        markets = server.result("plugin/list", {})["marketplaces"]
        [listed] = [market for market in markets if market["name"] == "my-plugins"]
        params = {"pluginName": "wordcount", "marketplacePath": listed["path"]}
        server.result("plugin/install", {**params, "installAttemptId": "a1"}, timeout=180)
        changed = server.wait_notification("codexCore/plugins/changed")["params"]
        assert changed["added"] == ["wordcount"]
        assert ask(server, folder, codex_model_server) == ["4"]

        # From the command line, while the server runs.
        out = run(*cli, "plugin", "uninstall", "wordcount", cwd=tmp_path, env=env)
        assert "1 running server reloaded its plugins" in out
        changed = server.wait_notification("codexCore/plugins/changed")["params"]
        assert changed["removed"] == ["wordcount"]
        assert ask(server, folder, codex_model_server) == ["unsupported call: count_words"]

        out = run(*cli, "plugin", "install", "wordcount", cwd=tmp_path, env=env)
        assert "installed codex-plugin-wordcount 0.1.0" in out
        changed = server.wait_notification("codexCore/plugins/changed")["params"]
        assert changed["added"] == ["wordcount"]
        assert ask(server, folder, codex_model_server) == ["4"]
    finally:
        server.close()


@pytest.mark.parametrize("path", ["pyproject.toml", "tests/conftest.py"])
def test_the_pages_files_are_the_scaffolds_where_nothing_is_tool_specific(path: str) -> None:
    """The page's conftest is the scaffold's; its pyproject differs only in name and text."""
    page = plugin_files()[path].split("\n", 1)[1]
    made = scaffold.files_for("wordcount", "tool")[path]
    if path == "tests/conftest.py":
        assert page.replace("def anyio_backend():", "def anyio_backend() -> str:") == made
    else:
        keys = {line.split(" = ")[0] for line in page.splitlines() if " = " in line}
        assert keys == {line.split(" = ")[0] for line in made.splitlines() if " = " in line}
