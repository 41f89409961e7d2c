"""``codex_thread_loaded``: called when ``thread/start``, ``thread/fork`` or ``thread/resume``
loads a thread, after the reply and ``thread/started``; not for a client joining a thread that
is already loaded. An installed plugin tells the thread's subscribers each time."""

from __future__ import annotations

from pathlib import Path

from codex_core.testing import ScriptedModelServer, message
from codex_core.testing.pytest_plugin import ServerFactory, StdioServer, write_distribution

LOADED_PLUGIN = """
from codex_core.hookspecs import hookimpl


@hookimpl
def codex_thread_loaded(kernel, thread_id):
    registry = kernel.services["threads"]
    registry.emit(registry.threads[thread_id], "warning",
                  {"threadId": thread_id, "message": "loaded"})
"""


def loaded(server: StdioServer) -> list[str]:
    """The threads the plugin was told about, in order."""
    return [
        n["params"]["threadId"]
        for n in server.notifications
        if n["method"] == "warning" and n["params"]["message"] == "loaded"
    ]


def test_the_hook_follows_each_load(
    codex_server_factory: ServerFactory,
    codex_plugin_site: Path,
    codex_model_server: ScriptedModelServer,
) -> None:
    write_distribution(codex_plugin_site, "codex-loaded-probe", LOADED_PLUGIN)
    codex_model_server.add(message("hi"))
    model = codex_model_server
    server = codex_server_factory(*model.config_args(), env=model.env)
    server.initialize()
    thread_id = server.result("thread/start", {})["thread"]["id"]
    server.barrier()
    methods = [n["method"] for n in server.notifications]
    assert methods.index("thread/started") < methods.index("warning")
    assert loaded(server) == [thread_id]
    text = [{"type": "text", "text": "hi", "text_elements": []}]
    server.result("turn/start", {"threadId": thread_id, "input": text})
    server.wait_notification("turn/completed", timeout=30)
    server.result("thread/resume", {"threadId": thread_id})  # loaded already: no call
    fork = server.result("thread/fork", {"threadId": thread_id})["thread"]["id"]
    server.barrier()
    assert loaded(server) == [thread_id, fork]
    server.result("thread/archive", {"threadId": thread_id})
    server.result("thread/unarchive", {"threadId": thread_id})
    server.result("thread/resume", {"threadId": thread_id})  # not loaded: loads it again
    server.barrier()
    assert loaded(server) == [thread_id, fork, thread_id]
