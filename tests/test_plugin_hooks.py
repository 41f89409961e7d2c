"""Plugin hooks go through pluggy: tracing and wrappers see every call, isolation holds.

Real server subprocesses with real installed plugin distributions: ``CODEX_CORE_TRACE_PLUGINS``
prints each hook call on stderr and leaves the JSON-RPC stream on stdout as it was; a plugin's
hook wrapper wraps every other plugin's implementation; a wrapper that raises fails only its
own plugin. The interface of every hook is declared once (``hookspecs.INTERFACES``) and listed
in ``docs/writing-plugins.md``.
"""

from __future__ import annotations

import json
import re
import sys
import typing
from pathlib import Path

import pytest

from codex_core import hookspecs
from codex_core.kernel import Kernel
from codex_core.testing import ModelResponse, ScriptedModelServer, function_call
from codex_core.testing.pytest_plugin import (
    CodexCli,
    KernelFactory,
    ServerFactory,
    write_distribution,
)

REPO = Path(__file__).resolve().parents[1]

REQUESTS = "".join(
    json.dumps(message) + "\n"
    for message in (
        {"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "t", "version": "1"}}},
        {"method": "initialized"},
        {"id": 2, "method": "account/read", "params": {}},
        {"id": 3, "method": "hello/say", "params": {}},
    )
)

HELLO = """
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod

async def hello(ctx, params):
    return {"greeting": "hello"}

@hookimpl
def codex_rpc_methods():
    return [RpcMethod("hello/say", hello)]

@hookimpl
def codex_connection_opened(connection):
    return None
"""

#: A wrapper around every plugin's ``codex_rpc_methods``: it sees each one's methods, and
#: answers ``wrapper/seen`` with the names of those it saw.
WRAPPER = """
from codex_core.hookspecs import hookimpl
from codex_core.rpc import RpcMethod

SEEN = []

async def seen(ctx, params):
    return {"calls": len(SEEN), "methods": sorted(name for names in SEEN for name in names)}

@hookimpl(wrapper=True, specname="codex_rpc_methods")
def wrap_methods():
    results = yield
    SEEN.append([method.name for found in results for method in found])
    return results

@hookimpl
def codex_rpc_methods():
    return [RpcMethod("wrapper/seen", seen)]
"""

#: Wrappers that fail: before the implementation runs, and after it has returned.
FAILING_WRAPPER = """
import sys

from codex_core.hookspecs import hookimpl

@hookimpl(wrapper=True)
def codex_rpc_methods():
    {before}
    results = yield
    {after}
    return results
"""

#: The smallest tool: only the required fields, the optional ones left at their defaults.
SHOUT = """
from codex_core.hookspecs import Tool, ToolResult, hookimpl

class Shout(Tool):
    name = "shout"
    description = "Repeats the text in capitals."
    input_schema = {"type": "object", "properties": {"text": {"type": "string"}}}

    async def call(self, arguments, context):
        return ToolResult(arguments["text"].upper())

@hookimpl
def codex_tools():
    return [Shout()]
"""

#: Looks like a tool but is not a ``Tool``.
DUCK_TOOL = """
from codex_core.hookspecs import hookimpl

class Duck:
    name = "quack"
    description = "Not a Tool subclass."
    input_schema = {"type": "object"}

    async def call(self, arguments, context):
        return "quack"

    def __repr__(self):
        return "<Duck>"

@hookimpl
def codex_tools():
    return [Duck()]
"""

#: Plugins installed while the server runs: one hooks a startup-only hook, one does not.
LATE_TRANSPORT = """
from codex_core.hookspecs import hookimpl

class Late:
    scheme = "late"

    async def serve(self, url, kernel):
        raise ValueError("not really")

@hookimpl
def codex_transports():
    return [Late()]
"""

#: An old-style wrapper (``hookwrapper=True``) failing before the implementation runs.
FAILING_OLD_STYLE_WRAPPER = """
from codex_core.hookspecs import hookimpl

@hookimpl(hookwrapper=True)
def codex_rpc_methods():
    raise BaseException("old style")
    yield
"""


def test_tracing_prints_each_hook_call_on_stderr_and_leaves_stdout_alone(
    codex_plugin_site: Path, codex_cli: CodexCli, codex_home: Path
) -> None:
    write_distribution(codex_plugin_site, "codex-hello", HELLO, entry_point="hello")
    (codex_home / "config.toml").write_text(
        '[model_providers.private]\nname = "private"\nbase_url = "http://127.0.0.1:9"\n'
        'experimental_bearer_token = "sk-never-traced"\n'
    )
    quiet = codex_cli(input=REQUESTS)
    traced = codex_cli(input=REQUESTS, env={"CODEX_CORE_TRACE_PLUGINS": "1"})
    assert (quiet.returncode, traced.returncode) == (0, 0), traced.stderr
    # The JSON-RPC stream is the same with the trace on: only replies, each one the same
    # (requests run concurrently, so their replies may come in either order).
    replies = sorted(map(json.loads, traced.stdout.splitlines()), key=lambda reply: reply["id"])
    assert replies == sorted(map(json.loads, quiet.stdout.splitlines()), key=lambda r: r["id"])
    assert [reply["id"] for reply in replies] == [1, 2, 3]
    assert replies[2]["result"] == {"greeting": "hello"}
    assert "codex_rpc_methods: plugin" not in quiet.stderr
    # Each call: the hook, the one plugin it went to, its time; then arguments and result.
    calls = re.findall(r"^(codex_\w+): plugin ([\w-]+), ([\d.]+) ms$", traced.stderr, re.M)
    assert ("codex_rpc_methods", "hello") in {(hook, plugin) for hook, plugin, _ in calls}
    assert ("codex_tools", "shell") in {(hook, plugin) for hook, plugin, _ in calls}
    assert ("codex_connection_opened", "hello") in {(hook, plugin) for hook, plugin, _ in calls}
    block = traced.stderr.split("codex_rpc_methods: plugin hello, ", 1)[1].splitlines()
    assert block[1].startswith("    arguments: {'kernel': <codex_core.kernel.Kernel object")
    assert block[2].startswith("    result: [RpcMethod(name='hello/say'")
    opened = traced.stderr.split("codex_connection_opened: plugin hello, ", 1)[1].splitlines()
    assert opened[1:3] == [
        "    arguments: {'connection': <Connection 1 stdio>}",
        "    result: None",
    ]
    # A mapping argument (the effective config) is shown by its size: it may hold secrets.
    loaded = traced.stderr.split("codex_config_loaded: plugin ", 1)[1].splitlines()
    assert re.match(r"    arguments: \{'config': <dict of \d+ keys>, 'kernel': <", loaded[1])
    assert "sk-never-traced" not in traced.stderr
    # An awaitable a hook returned is timed too, when the kernel awaits it.
    awaited = r"^codex_shutdown: plugin threads, awaited [\d.]+ ms: done$"
    assert re.search(awaited, traced.stderr, re.M)


def test_a_plugin_wrapper_wraps_each_implementation(
    codex_plugin_site: Path, codex_server_factory: ServerFactory
) -> None:
    write_distribution(codex_plugin_site, "codex-wrapper", WRAPPER, entry_point="wrapper")
    write_distribution(codex_plugin_site, "codex-hello", HELLO, entry_point="hello")
    server = codex_server_factory(env={"CODEX_CORE_TRACE_PLUGINS": "1"})
    server.initialize()
    seen = server.result("wrapper/seen", {})
    # One call per plugin implementing the hook (the wrapper's own plugin included), each seen
    # with that plugin's methods only.
    traced = r"^codex_rpc_methods: plugin ([\w-]+) \(wrapped by wrapper\)"
    implementing = re.findall(traced, server.stderr, re.M)
    assert seen["calls"] == len(implementing) > 10
    assert {"hello", "threads", "wrapper"} <= set(implementing)
    assert {"hello/say", "thread/start", "fs/readFile", "wrapper/seen"} <= set(seen["methods"])
    assert server.result("hello/say", {}) == {"greeting": "hello"}
    assert server.close() == 0


def test_a_failing_wrapper_fails_only_its_own_plugin(
    codex_plugin_site: Path, codex_cli: CodexCli, codex_server_factory: ServerFactory
) -> None:
    write_distribution(codex_plugin_site, "codex-hello", HELLO, entry_point="hello")
    write_distribution(
        codex_plugin_site,
        "codex-wrap-before",
        FAILING_WRAPPER.format(before="sys.exit(3)", after="pass"),
        entry_point="wrap_before",
    )
    write_distribution(
        codex_plugin_site,
        "codex-wrap-after",
        FAILING_WRAPPER.format(before="pass", after="raise KeyboardInterrupt('after')"),
        entry_point="wrap_after",
    )
    write_distribution(
        codex_plugin_site, "codex-wrap-old", FAILING_OLD_STYLE_WRAPPER, entry_point="wrap_old"
    )
    completed = codex_cli("plugins", "list", "--json")
    assert completed.returncode == 0, completed.stderr
    records = {record["name"]: record for record in json.loads(completed.stdout)}
    assert (records["wrap_old"]["state"], records["wrap_old"]["error"]) == (
        "failed",
        "codex_rpc_methods raised BaseException: old style",
    )
    assert (records["wrap_before"]["state"], records["wrap_before"]["error"]) == (
        "failed",
        "codex_rpc_methods raised SystemExit: 3",
    )
    assert (records["wrap_after"]["state"], records["wrap_after"]["error"]) == (
        "failed",
        "codex_rpc_methods raised KeyboardInterrupt: after",
    )
    others = [r for name, r in records.items() if not name.startswith("wrap_")]
    assert [r["name"] for r in others if r["state"] != "loaded"] == []
    server = codex_server_factory()
    server.initialize()
    # The implementations they wrapped still contributed: the one whose wrapper failed before
    # it ran was called again without it, the one whose wrapper failed after kept its result.
    assert server.result("hello/say", {}) == {"greeting": "hello"}
    assert "account" in server.result("account/read", {})
    assert server.close() == 0


def test_every_hookspec_declares_its_interface() -> None:
    specs = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "codex_spec")}
    assert specs == set(hookspecs.INTERFACES)
    attributes = typing.get_type_hints(Kernel)
    for name, interface in hookspecs.INTERFACES.items():
        if interface.returns == "contributions":
            assert interface.kind is not None and interface.label, name
            # The kernel attribute that keeps the contributions is declared, with their type.
            assert interface.attribute in attributes, name
            assert interface.kind in typing.get_args(attributes[interface.attribute]), name
        else:
            assert interface.kind is None and interface.attribute is None, name


def test_writing_plugins_lists_every_hook() -> None:
    text = (REPO / "docs" / "writing-plugins.md").read_text()
    table = text.split("## The hooks", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    first_column = "\n".join(row.split(" | ")[0] for row in table.splitlines())
    listed = set(re.findall(r"`(codex_\w+)`", first_column))
    assert listed == set(hookspecs.INTERFACES)


def test_a_tool_with_only_the_required_fields_is_offered_and_called(
    codex_plugin_site: Path, codex_server_factory: ServerFactory
) -> None:
    write_distribution(codex_plugin_site, "codex-shout", SHOUT, entry_point="shout")
    write_distribution(codex_plugin_site, "codex-duck", DUCK_TOOL, entry_point="duck")
    with ScriptedModelServer() as model:
        model.add(ModelResponse([function_call("shout", {"text": "hi"}, call_id="c1")]), "done")
        server = codex_server_factory(*model.config_args(), env=model.env)
        server.initialize()
        warning = server.wait_notification("configWarning")["params"]["summary"]
        assert warning == (
            "Plugin `duck` failed and is not active: codex_tools returned <Duck>, not a Tool"
        )
        thread_id = server.result("thread/start", {})["thread"]["id"]
        server.result(
            "turn/start",
            {"threadId": thread_id, "input": [{"type": "text", "text": "shout hi"}]},
        )
        completed = server.wait_notification("turn/completed")["params"]["turn"]
        assert completed["status"] == "completed"
        first, second = model.wait_for_requests(2)
    offered = {tool.get("name"): tool for tool in first.body["tools"]}
    assert "quack" not in offered
    # The defaults: offered to every thread, as a plain function tool (no format, no namespace).
    assert offered["shout"] == {
        "type": "function",
        "name": "shout",
        "description": "Repeats the text in capitals.",
        "strict": False,
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    assert second.body["input"][-1] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": "HI",
    }
    assert server.close() == 0


def test_a_hot_loaded_plugin_needs_a_restart_only_for_startup_only_hooks(
    codex_kernel_factory: KernelFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kernel = codex_kernel_factory()
    site = tmp_path / "site"
    write_distribution(site, "codex-late-transport", LATE_TRANSPORT, entry_point="late_transport")
    write_distribution(site, "codex-late-hello", HELLO, entry_point="late_hello")
    # Appended: the entry-point lookup leaves out sys.path[0] (the program being run).
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    changed = kernel.reload_plugins()
    assert sorted(changed["added"]) == ["late_hello", "late_transport"]
    # codex_transports is declared startup_only; codex_rpc_methods is not.
    assert changed["restartRequired"] == ["late_transport"]
    assert hookspecs.INTERFACES["codex_transports"].startup_only
    # Both were asked for their contributions, and the kernel keeps them where declared.
    assert "late" in kernel.transports
    assert kernel.rpc_methods["hello/say"].name == "hello/say"
    assert kernel.router.routes["hello/say"].plugin == "late_hello"
