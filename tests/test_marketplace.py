"""Catalogs from a loopback HTTP server; install, upgrade, use and uninstall plugins: no restart.

Servers that install run in a throwaway venv (``--system-site-packages --without-pip``, plus a
``.pth`` that adds this environment's site-packages) so installs land there and never in the
repo's environment. The catalogs and wheels are served from a loopback HTTP server.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pty
import re
import socket
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_core.testing import serve_files
from codex_core.testing.loopback import Handler, LoopbackRequest, Reply
from codex_core.testing.pytest_plugin import (
    CodexCli,
    LoopbackFactory,
    ServerFactory,
    StdioServer,
    write_distribution,
)

REPO = Path(__file__).resolve().parents[1]

FIXTURES = REPO / "tests" / "fixtures" / "marketplace"


def build_wheel(
    out: Path, name: str, module_source: str, requires: list[str], version: str = "1.0"
) -> Path:
    """A pure-Python wheel with one module and its ``codex_core.plugins`` entry point.

    Built by hand: this machine has no ``wheel``/hatchling to run ``pip wheel`` offline.
    """
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}.py": module_source,
        f"{info}/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
            + [f"Requires-Dist: {r}" for r in requires]
        )
        + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[codex_core.plugins]\n{name.split('-')[-1]} = {module}\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = out / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def served(tmp_path: Path, codex_loopback_factory: LoopbackFactory) -> str:
    """A loopback HTTP server over ``tmp_path / "www"``; its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    return f"{codex_loopback_factory(serve_files(root)).url}/"


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A throwaway venv whose interpreter sees this environment's packages."""
    target = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(target)],
        check=True,
    )
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = sysconfig.get_paths()["purelib"]
    (site / "zz_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return target


def site_packages(venv: Path) -> set[str]:
    site = next((venv / "lib").glob("python*/site-packages"))
    return {path.name for path in site.iterdir()}


def publish(www: Path, sample_version: str = "1.0", *, sample_hash: str | None = None) -> None:
    """Write the test catalog (and its wheels) into the served folder.

    ``sample`` points at the wheel of ``sample_version``; ``sample_hash`` replaces its hash
    (a tampered catalog).
    """
    sample_source = (FIXTURES / "codex_plugin_sample.py").read_text()
    sample = build_wheel(
        www,
        "codex-plugin-sample",
        sample_source.replace('"sample"}', f'"sample {sample_version}"}}'),
        ["codex-core>=0.1,<1"],
        version=sample_version,
    )
    future = build_wheel(
        www,
        "codex-plugin-future",
        sample_source.replace("sample/", "future/"),
        ["codex-core>=99"],
    )
    text = (FIXTURES / "marketplace.json.in").read_text()
    text = text.replace("@SAMPLE_WHEEL@", sample.name)
    text = text.replace("@SAMPLE_SHA256@", sample_hash or sha256(sample))
    text = text.replace("@FUTURE_SHA256@", sha256(future))
    text = text.replace("@WRONG_SHA256@", "0" * 64)
    text = text.replace("@LONG_PROMPT@", "x" * 129)
    (www / "marketplace.json").write_text(text)


@pytest.fixture
def market(served: str, tmp_path: Path) -> dict[str, str]:
    www = tmp_path / "www"
    publish(www)
    (www / "broken").mkdir()
    (www / "broken" / "marketplace.json").write_text(
        (FIXTURES / "broken-marketplace.json").read_text()
    )
    return {"good": served + "marketplace.json", "broken": served + "broken/marketplace.json"}


@pytest.fixture
def venv_env(server_env: dict[str, str], market: dict[str, str]) -> dict[str, str]:
    """The environment of the venv's server and CLI: the broken catalog configured by hand."""
    home = Path(server_env["CODEX_HOME"])
    (home / "config.toml").write_text(
        f'[marketplace]\ndefault = false\n\n[marketplaces.broken]\nsource = "{market["broken"]}"\n'
    )
    env = dict(server_env)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def market_server(
    venv: Path, market: dict[str, str], venv_env: dict[str, str], tmp_path: Path
) -> Iterator[StdioServer]:
    """A server in the venv with the good catalog added over the protocol."""
    server = StdioServer([str(venv / "bin" / "python"), "-m", "codex_core"], venv_env, tmp_path)
    server.initialize()
    added = server.result("marketplace/add", {"source": market["good"]})
    assert added["marketplaceName"] == "test-market" and added["alreadyAdded"] is False
    yield server
    server.close()


def catalog_path(server: StdioServer) -> str:
    [market] = server.result("plugin/list", {})["marketplaces"]
    path: str = market["path"]
    return path


def test_list_read_install_call_uninstall(market_server: StdioServer, venv: Path) -> None:
    server = market_server
    listing = server.result("plugin/list", {})
    assert [m["name"] for m in listing["marketplaces"]] == ["test-market"]
    assert listing["featuredPluginIds"] == []
    [error] = listing["marketplaceLoadErrors"]
    assert error["marketplacePath"].endswith("broken/marketplace.json")
    assert "invalid marketplace file" in error["message"]
    market = listing["marketplaces"][0]
    assert market["interface"] == {"displayName": "Test marketplace"}
    assert market["path"].endswith(".tmp/marketplaces/test-market/.agents/plugins/marketplace.json")
    # the git-only entry is not a Python plugin: skipped, the others list
    assert [p["name"] for p in market["plugins"]] == ["sample", "tampered", "future"]
    sample = market["plugins"][0]
    assert sample["id"] == "sample@test-market"
    assert sample["installed"] is False and sample["source"] == {"type": "remote"}
    assert sample["installPolicy"] == "AVAILABLE" and sample["authPolicy"] == "ON_USE"
    assert sample["interface"]["defaultPrompt"] == ["Echo something", "Two", "Three"]

    path = market["path"]
    read = server.result("plugin/read", {"pluginName": "sample", "marketplacePath": path})
    assert read["plugin"]["marketplaceName"] == "test-market"
    assert read["plugin"]["summary"]["id"] == "sample@test-market"
    by_name = {"pluginName": "sample", "remoteMarketplaceName": "test-market"}
    assert server.result("plugin/read", by_name)["plugin"]["marketplacePath"] == path

    assert server.error("sample/echo", {"a": 1})["code"] == -32600  # not there yet
    before = site_packages(venv)
    params = {"pluginName": "sample", "marketplacePath": path, "installAttemptId": "attempt-1"}
    result = server.result("plugin/install", params, timeout=120)
    assert result == {"authPolicy": "ON_USE", "appsNeedingAuth": []}
    progress = [
        n["params"]
        for n in server.notifications
        if n["method"] == "codexCore/plugins/installProgress"
    ]
    assert {p["installAttemptId"] for p in progress} == {"attempt-1"}
    stages = [p["stage"] for p in progress]
    assert stages[0] == "downloading" and stages[-2:] == ["verifying", "installing"]
    assert progress[stages.index("verifying") - 1]["done"] == progress[0]["total"] > 0
    changed = server.wait_notification("codexCore/plugins/changed")
    assert changed["params"]["added"] == ["sample"]
    assert server.result("sample/echo", {"a": 1}) == {"echo": {"a": 1}, "plugin": "sample 1.0"}
    read = server.result("plugin/read", {"pluginName": "sample", "marketplacePath": path})
    assert read["plugin"]["summary"]["installed"] is True
    installed = server.result("plugin/installed", {})
    # "tampered" names the same distribution, so it counts as installed too
    assert [p["name"] for p in installed["marketplaces"][0]["plugins"]] == ["sample", "tampered"]

    assert server.result("plugin/uninstall", {"pluginId": "sample@test-market"}, timeout=120) == {}
    assert server.wait_notification("codexCore/plugins/changed")["params"]["removed"] == ["sample"]
    assert server.error("sample/echo", {"a": 1})["code"] == -32600
    assert site_packages(venv) == before
    # no progress for an install without an attempt id, and uninstalling twice is a no-op
    assert server.result("plugin/uninstall", {"pluginId": "sample@test-market"}) == {}


def test_plugins_changed_goes_only_to_clients_that_opted_in(market_server: StdioServer) -> None:
    """``codexCore/plugins/changed`` is outside the official schema: a client that never sent
    an ``installAttemptId`` (one generated from the schema) never receives it; one that did
    receives it from then on, for an uninstall too."""
    server = market_server
    params = {"pluginName": "sample", "marketplacePath": catalog_path(server)}
    assert server.result("plugin/install", params, timeout=120)["appsNeedingAuth"] == []
    assert server.result("sample/echo", {"a": 1})["echo"] == {"a": 1}  # it did change
    server.barrier()
    uninstall = {"pluginId": "sample@test-market"}
    assert server.result("plugin/uninstall", uninstall, timeout=120) == {}
    server.barrier()
    assert [n for n in server.notifications if n["method"].startswith("codexCore/")] == []
    with_attempt = {**params, "installAttemptId": "attempt-2"}
    server.result("plugin/install", with_attempt, timeout=120)
    assert server.wait_notification("codexCore/plugins/changed")["params"]["added"] == ["sample"]
    server.result("plugin/uninstall", uninstall, timeout=120)
    assert server.wait_notification("codexCore/plugins/changed")["params"]["removed"] == ["sample"]


def test_wrong_hash_and_incompatible_range_change_nothing(
    market_server: StdioServer, venv: Path
) -> None:
    server = market_server
    path = catalog_path(server)
    before = site_packages(venv)
    params = {"pluginName": "tampered", "marketplacePath": path}
    error = server.error("plugin/install", params, timeout=60)
    assert "hash mismatch" in error["message"] and "nothing was installed" in error["message"]
    error = server.error("plugin/install", {**params, "pluginName": "future"}, timeout=60)
    assert "requires codex-core>=99" in error["message"], error
    assert site_packages(venv) == before
    assert server.error("future/echo", {})["code"] == -32600


def test_plugin_lookups_name_one_catalog(market_server: StdioServer) -> None:
    server = market_server
    error = server.error("plugin/install", {"pluginName": "sample"})
    assert error["message"] == (
        "plugin/install requires exactly one of marketplacePath or remoteMarketplaceName"
    )
    params = {"pluginName": "nope", "marketplacePath": catalog_path(server)}
    message = server.error("plugin/read", params)["message"]
    assert message == "plugin `nope` was not found in marketplace `test-market`"
    params["marketplacePath"] = "/nonexistent/marketplace.json"
    message = server.error("plugin/read", params)["message"]
    assert message == "marketplace file `/nonexistent/marketplace.json` does not exist"
    message = server.error("plugin/uninstall", {"pluginId": "sample"})["message"]
    assert message == "invalid plugin key `sample`; expected <plugin>@<marketplace>"
    assert server.result("plugin/uninstall", {"pluginId": "sample@elsewhere"}) == {}


def test_uninstall_refused_while_a_plugin_depends_on_it(
    market_server: StdioServer, venv: Path
) -> None:
    server = market_server
    params = {"pluginName": "sample", "remoteMarketplaceName": "test-market"}
    server.result("plugin/install", params, timeout=120)
    site = next((venv / "lib").glob("python*/site-packages"))
    write_distribution(
        site,
        "codex-plugin-needs-sample",
        "",
        requires=["codex-plugin-sample>=1"],
        entry_point="needs_sample",
    )
    error = server.error("plugin/uninstall", {"pluginId": "sample@test-market"}, timeout=60)
    assert "needed by codex-plugin-needs-sample" in error["message"], error
    assert server.result("sample/echo", {}) == {"echo": {}, "plugin": "sample 1.0"}


# --------------------------------------------------------------------------- the CLI


def venv_cli(
    venv: Path, env: dict[str, str], *args: str, terminal: bool = False
) -> tuple[int, str, str]:
    """Run ``codex-app-server ARGS`` with the venv's interpreter: (exit code, stdout, stderr).

    With ``terminal`` its stderr is a pseudo-terminal, as in an interactive shell.
    """
    command = [str(venv / "bin" / "python"), "-m", "codex_core", *args]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=follower, text=True
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the follower side closed: the process is gone
                break
            if not data:
                break
            chunks.append(data)
        stdout = process.stdout.read() if process.stdout else ""
        code = process.wait(timeout=120)
    os.close(leader)
    return code, stdout, b"".join(chunks).decode()


def test_cli_install_upgrade_and_progress(
    venv: Path, venv_env: dict[str, str], market: dict[str, str], tmp_path: Path
) -> None:
    env = venv_env
    code, out, err = venv_cli(venv, env, "marketplace", "add", market["good"])
    assert code == 0 and out.startswith("added marketplace test-market"), err

    # On a terminal: rich's bars, each step's full at the end.
    code, out, err = venv_cli(venv, env, "plugin", "install", "sample@test-market", terminal=True)
    assert code == 0, err
    assert out == "installed codex-plugin-sample 1.0\n"
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err)  # without colours and cursor moves
    assert re.search(r"downloading codex_plugin_sample-1\.0-py3-none-any\.whl +━+ +100%", shown)
    assert re.search(r"installing codex-plugin-sample 1\.0 +━+ +100%", shown)
    assert " ..." not in shown  # not the plain lines

    code, out, err = venv_cli(venv, env, "plugin", "upgrade", "sample")
    assert (code, out) == (0, "codex-plugin-sample 1.0 is up to date\n"), err

    # A new version is published; the catalog's copy only changes with `marketplace upgrade`.
    www = tmp_path / "www"
    publish(www, "2.0", sample_hash="f" * 64)
    code, out, err = venv_cli(venv, env, "marketplace", "upgrade")
    # the good catalog is upgraded, the broken one (configured by hand) reported: exit 1
    assert code == 1 and out.startswith("upgraded "), err
    assert "codex-app-server: broken: invalid marketplace file" in err
    before = site_packages(venv)
    code, out, err = venv_cli(venv, env, "plugin", "upgrade", "sample")
    assert code == 1 and "hash mismatch" in err, err
    assert site_packages(venv) == before

    publish(www, "2.0")
    assert venv_cli(venv, env, "marketplace", "upgrade", "test-market")[0] == 0
    code, out, err = venv_cli(venv, env, "plugin", "upgrade", "sample")
    assert (code, out) == (0, "upgraded codex-plugin-sample 1.0 -> 2.0\n"), err
    # Not a terminal: one plain line per step, no bar.
    assert err.splitlines()[-3:] == [
        "downloading codex_plugin_sample-2.0-py3-none-any.whl ...",
        "checking codex_plugin_sample-2.0-py3-none-any.whl ...",
        "installing codex-plugin-sample 2.0 ...",
    ]
    code, out, _err = venv_cli(venv, env, "plugin", "list", "--json")
    assert json.loads(out)[0]["installed"] == "2.0"


def test_cli_upgrade_refuses_what_installed_plugins_exclude(
    venv: Path, venv_env: dict[str, str], market: dict[str, str], tmp_path: Path
) -> None:
    env = venv_env
    assert venv_cli(venv, env, "marketplace", "add", market["good"])[0] == 0
    assert venv_cli(venv, env, "plugin", "install", "sample")[0] == 0
    site = next((venv / "lib").glob("python*/site-packages"))
    write_distribution(
        site, "codex-plugin-pins-sample", "", requires=["codex-plugin-sample<2"], entry_point="pins"
    )
    publish(tmp_path / "www", "2.0")
    assert venv_cli(venv, env, "marketplace", "upgrade", "test-market")[0] == 0
    before = site_packages(venv)
    code, _out, err = venv_cli(venv, env, "plugin", "upgrade", "sample")
    assert code == 1
    assert "codex-plugin-pins-sample requires codex-plugin-sample<2" in err, err
    assert site_packages(venv) == before
    code, _out, err = venv_cli(venv, env, "plugin", "upgrade", "future")
    assert code == 1
    assert err.splitlines()[-1] == (
        "codex-app-server: codex-plugin-future is not installed: install it first"
    )


# --------------------------------------------------------------------------- catalog sources


def user_config(home: Path) -> dict[str, object]:
    return tomllib.loads((home / "config.toml").read_text())


def test_add_upgrade_remove_a_url_catalog(
    start_server: ServerFactory, market: dict[str, str], codex_home: Path, tmp_path: Path
) -> None:
    server = start_server("-c", "marketplace.default=false")
    server.initialize()
    added = server.result("marketplace/add", {"source": market["good"]})
    root = codex_home / ".tmp" / "marketplaces" / "test-market"
    assert added == {
        "marketplaceName": "test-market",
        "installedRoot": str(root),
        "alreadyAdded": False,
    }
    copy = root / ".agents" / "plugins" / "marketplace.json"
    assert copy.read_text() == (tmp_path / "www" / "marketplace.json").read_text()
    entry = user_config(codex_home)["marketplaces"]["test-market"]  # type: ignore[index]
    assert entry["source"] == market["good"] and "source_type" not in entry
    again = server.result("marketplace/add", {"source": market["good"]})
    assert again["alreadyAdded"] is True

    # Nothing changed upstream: nothing upgraded.
    upgrade = server.result("marketplace/upgrade", {})
    assert upgrade == {"selectedMarketplaces": ["test-market"], "upgradedRoots": [], "errors": []}
    publish(tmp_path / "www", "2.0")
    upgrade = server.result("marketplace/upgrade", {"marketplaceName": "test-market"})
    assert upgrade["upgradedRoots"] == [str(root)] and upgrade["errors"] == []
    assert "codex_plugin_sample-2.0" in copy.read_text()

    # A broken download is reported and the copy kept: the catalog still lists.
    (tmp_path / "www" / "marketplace.json").write_text("{")
    upgrade = server.result("marketplace/upgrade", {})
    [error] = upgrade["errors"]
    assert error["marketplaceName"] == "test-market"
    assert error["message"].startswith(f"invalid marketplace file `{market['good']}`")
    assert "codex_plugin_sample-2.0" in copy.read_text()
    assert [m["name"] for m in server.result("plugin/list", {})["marketplaces"]] == ["test-market"]

    removed = server.result("marketplace/remove", {"marketplaceName": "test-market"})
    assert removed == {"marketplaceName": "test-market", "installedRoot": str(root)}
    assert not root.exists() and "marketplaces" not in user_config(codex_home)
    assert server.result("plugin/list", {})["marketplaces"] == []
    error = server.error("marketplace/remove", {"marketplaceName": "test-market"})
    assert error["message"] == "marketplace `test-market` is not configured or installed"


def test_add_a_local_folder_and_refusals(
    server: StdioServer, codex_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "local-market"
    (folder / ".agents" / "plugins").mkdir(parents=True)
    catalog = {"name": "local", "plugins": [{"name": "hello", "source": "./hello"}]}
    (folder / ".agents" / "plugins" / "marketplace.json").write_text(json.dumps(catalog))
    added = server.result("marketplace/add", {"source": str(folder)})
    assert added == {
        "marketplaceName": "local",
        "installedRoot": str(folder),
        "alreadyAdded": False,
    }
    entry = user_config(codex_home)["marketplaces"]["local"]  # type: ignore[index]
    assert entry == {"source_type": "local", "source": str(folder)}
    summary = server.result(
        "plugin/read", {"pluginName": "hello", "remoteMarketplaceName": "local"}
    )
    assert summary["plugin"]["summary"]["source"] == {
        "type": "local",
        "path": str(folder / "hello"),
    }

    other = tmp_path / "other"
    (other / ".agents" / "plugins").mkdir(parents=True)
    (other / ".agents" / "plugins" / "marketplace.json").write_text(json.dumps(catalog))
    refusals = {
        str(other): f"marketplace 'local' is already added from a different source; "
        f"remove it before adding {other}",
        str(folder / ".agents" / "plugins" / "marketplace.json"): (
            "local marketplace source must be a directory, not a file"
        ),
        str(tmp_path / "missing"): "failed to resolve local marketplace source path: "
        "No such file or directory (os error 2)",
        "owner/repo": "invalid marketplace source format; "
        "expected a catalog URL or a local marketplace path",
        " ": "marketplace source must not be empty",
    }
    for source, message in refusals.items():
        assert server.error("marketplace/add", {"source": source})["message"] == message
    error = server.error("marketplace/add", {"source": str(folder), "refName": "main"})
    assert error["message"] == "--ref is only supported for git marketplace sources"
    error = server.error("marketplace/remove", {"marketplaceName": "a.b"})
    assert "only ASCII letters, digits, `_`, and `-` are allowed" in error["message"]
    assert user_config(codex_home)["marketplaces"] == {"local": entry}


def test_a_codex_plugin_shows_its_manifest(server: StdioServer, tmp_path: Path) -> None:
    """A Codex plugin folder (``.codex-plugin/plugin.json``) shows what its manifest declares;
    the entry's ``category`` fills in, its ``description`` and ``defaultPrompt`` do not (the
    values the official server answers for the same folders)."""
    folder = tmp_path / "codex-market"
    (folder / ".agents" / "plugins").mkdir(parents=True)
    entries = [
        {"name": "full", "source": "./full", "description": "entry", "defaultPrompt": "entry"},
        {"name": "bare", "source": "./bare", "category": "Entry category", "description": "e"},
        {"name": "plain", "source": "./plain", "description": "entry only"},
    ]
    manifests = {
        "full": {
            "name": "full",
            "description": "from the manifest",
            "interface": {
                "displayName": "Full", "longDescription": "long", "developerName": "dev",
                "websiteUrl": "https://x", "brandColor": "#fff", "capabilities": ["Read"],
                "defaultPrompt": ["p1", "p2"], "category": "Manifest category",
            },
        },
        "bare": {"name": "bare"},
        "plain": {"name": "plain", "description": "from the manifest"},
    }  # fmt: skip
    catalog = {"name": "codex-market", "plugins": entries}
    (folder / ".agents" / "plugins" / "marketplace.json").write_text(json.dumps(catalog))
    for name, manifest in manifests.items():
        (folder / name / ".codex-plugin").mkdir(parents=True)
        (folder / name / ".codex-plugin" / "plugin.json").write_text(json.dumps(manifest))
    server.result("marketplace/add", {"source": str(folder)})
    path = str(folder / ".agents" / "plugins" / "marketplace.json")

    def read(name: str) -> tuple[Any, Any]:
        plugin = server.result("plugin/read", {"pluginName": name, "marketplacePath": path})
        interface = plugin["plugin"]["summary"]["interface"]
        shown = interface and {k: v for k, v in interface.items() if v not in (None, [])}
        return plugin["plugin"]["description"], shown

    assert read("full") == (
        "from the manifest",
        {"displayName": "Full", "longDescription": "long", "developerName": "dev",
         "category": "Manifest category", "capabilities": ["Read"], "websiteUrl": "https://x",
         "defaultPrompt": ["p1", "p2"], "brandColor": "#fff"},
    )  # fmt: skip
    assert read("bare") == (None, {"category": "Entry category"})
    assert read("plain") == ("from the manifest", None)


def test_a_broken_catalog_is_refused_and_nothing_recorded(
    server: StdioServer, market: dict[str, str], codex_home: Path
) -> None:
    error = server.error("marketplace/add", {"source": market["broken"]})
    assert error["message"].startswith(f"invalid marketplace file `{market['broken']}`")
    assert not (codex_home / "config.toml").exists()
    assert not (codex_home / ".tmp").exists()


def test_features_plugins_gate(start_server: ServerFactory, market: dict[str, str]) -> None:
    server = start_server("-c", "features.plugins=false")
    server.initialize()
    server.result("marketplace/add", {"source": market["good"]})  # not gated, as the reference
    empty: dict[str, list[object]] = {
        "marketplaces": [],
        "marketplaceLoadErrors": [],
        "featuredPluginIds": [],
    }
    assert server.result("plugin/list", {}) == empty
    assert server.result("plugin/installed", {}) == {
        "marketplaces": [],
        "marketplaceLoadErrors": [],
    }
    params = {"pluginName": "sample", "remoteMarketplaceName": "test-market"}
    assert server.error("plugin/read", params)["message"] == "plugins feature is disabled"


def test_cli_marketplace_commands(
    codex_cli: CodexCli, market: dict[str, str], codex_home: Path
) -> None:
    no_default = ("-c", "marketplace.default=false")
    done = codex_cli(*no_default, "marketplace", "add", market["good"])
    assert done.returncode == 0, done.stderr
    root = codex_home / ".tmp" / "marketplaces" / "test-market"
    assert done.stdout == f"added marketplace test-market ({root})\n"
    listed = codex_cli(*no_default, "marketplace", "list")
    assert listed.stdout.split()[:3] == ["test-market", "3", "plugins"]
    done = codex_cli("marketplace", "remove", "test-market")
    assert (done.returncode, done.stdout) == (0, "removed marketplace test-market\n")
    done = codex_cli("marketplace", "remove", "test-market")
    assert done.returncode == 1
    assert (
        done.stderr
        == "codex-app-server: marketplace `test-market` is not configured or installed\n"
    )


# --------------------------------------------------------------------------- failed installs


def static_index(root: Path) -> Handler:
    """``serve_files`` that also answers a folder (``/simple/name/``) with its index.html."""
    files = serve_files(root)

    def handle(request: LoopbackRequest) -> Reply:
        if request.path.endswith("/"):
            request = dataclasses.replace(request, path=request.path + "index.html")
        return files(request)

    return handle


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_failed_install_is_reported_and_changes_nothing(
    venv: Path,
    server_env: dict[str, str],
    codex_loopback_factory: LoopbackFactory,
    tmp_path: Path,
) -> None:
    """Download, build and pip failures each come back as the request's error."""
    www = tmp_path / "failing-www"
    www.mkdir()
    host = codex_loopback_factory(static_index(www))
    junk = www / "junk-1.0-py3-none-any.whl"
    junk.write_text("not a zip")
    empty = www / "empty-1.0-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("empty.py", "")
    sample = (FIXTURES / "codex_plugin_sample.py").read_text()
    needy = build_wheel(www, "codex-plugin-needy", sample, ["codex-plugin-nowhere-to-be-found"])
    pinned = build_wheel(www, "codex-plugin-pinned", sample.replace("sample/", "pinned/"), [])
    index = www / "simple" / "codex-plugin-pinned"
    index.mkdir(parents=True)
    (index / "index.html").write_text(f'<a href="../../{pinned.name}">{pinned.name}</a>\n')
    not_a_project = tmp_path / "catalog" / "not-a-project"
    not_a_project.mkdir(parents=True)
    (not_a_project / "README.md").write_text("no pyproject.toml, no setup.py\n")

    def wheel(name: str, url: str, path: Path) -> dict[str, Any]:
        return {"name": name, "source": {"source": "wheel", "url": url, "sha256": sha256(path)}}

    def pypi(name: str, requirement: str, digest: str) -> dict[str, Any]:
        return {
            "name": name,
            "source": {"source": "pypi", "requirement": requirement,
                       "hashes": [f"sha256:{digest}"], "indexUrl": f"{host.url}/simple/"},
        }  # fmt: skip

    unreachable = f"http://127.0.0.1:{closed_port()}/x-1.0-py3-none-any.whl"
    entries = [
        {"name": "unavailable", "source": "./not-a-project",
         "policy": {"installation": "NOT_AVAILABLE"}},
        wheel("gone", f"{host.url}/gone-1.0-py3-none-any.whl", junk),
        wheel("unreachable", unreachable, junk),
        wheel("junk", f"{host.url}/{junk.name}", junk),
        wheel("no-metadata", f"{host.url}/{empty.name}", empty),
        wheel("needy", f"{host.url}/{needy.name}", needy),
        pypi("unindexed", "codex-plugin-unindexed==1.0", "0" * 64),
        pypi("pinned", "codex-plugin-pinned==1.0", sha256(pinned)),
        {"name": "missing-folder", "source": "./missing"},
        {"name": "not-a-project", "source": "./not-a-project"},
    ]  # fmt: skip
    catalog = tmp_path / "catalog" / "marketplace.json"
    catalog.write_text(json.dumps({"name": "failing", "plugins": entries}))
    env = dict(server_env)
    env.pop("PYTHONPATH", None)
    # pip sees this host only: no configured indexes or wheel folders, no network.
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=f"{host.url}/simple/")
    env.pop("PIP_FIND_LINKS", None)
    server = StdioServer([str(venv / "bin" / "python"), "-m", "codex_core"], env, tmp_path)
    server.initialize()
    before = site_packages(venv)

    def failure(name: str) -> str:
        params = {"pluginName": name, "marketplacePath": str(catalog)}
        message = str(server.error("plugin/install", params, timeout=120)["message"])
        prefix = f"failed to install {name}: "
        assert message.startswith(prefix), message
        return message.removeprefix(prefix)

    assert failure("unavailable") == "plugin unavailable is not available for installation"
    assert failure("gone") == (
        f"failed to download {host.url}/gone-1.0-py3-none-any.whl: the server answered "
        "404 Not Found; check that the URL is right"
    )
    assert failure("unreachable") == (
        f"failed to download {unreachable}: connection refused; check the URL's port and that "
        "the server is running"
    )
    assert failure("junk") == f"{junk.name} is not a wheel"
    assert failure("no-metadata") == f"{empty.name} has no .dist-info/METADATA"
    needy_failure = failure("needy")
    assert needy_failure.startswith("install failed (exit 1): "), needy_failure
    assert "codex-plugin-nowhere-to-be-found" in needy_failure
    unindexed = failure("unindexed")
    assert unindexed.startswith("download failed (exit 1): "), unindexed
    assert "codex-plugin-unindexed==1.0" in unindexed
    assert failure("missing-folder") == (
        f"plugin missing-folder: {tmp_path / 'catalog' / 'missing'} is not a folder"
    )
    assert failure("not-a-project").startswith("build failed (exit 1): ")
    assert site_packages(venv) == before
    # The pip index was asked, and what it serves installs: the failures were the sources'.
    asked = {request.path for request in host.requests}
    assert "/simple/codex-plugin-unindexed/" in asked
    assert "/simple/codex-plugin-nowhere-to-be-found/" in asked
    params = {"pluginName": "pinned", "marketplacePath": str(catalog)}
    assert server.result("plugin/install", params, timeout=120)["authPolicy"] == "ON_INSTALL"
    assert server.result("pinned/echo", {"a": 1}) == {"echo": {"a": 1}, "plugin": "sample"}
    server.close()


# --------------------------------------------------------------------------- running servers


def test_cli_installs_reach_running_servers(
    market_server: StdioServer, venv: Path, venv_env: dict[str, str]
) -> None:
    """A running server loads what `codex-app-server plugin install` installed, and drops
    what `uninstall` removed, and says so to the clients that opted in; a protocol install on
    one server reaches the other servers of the environment too."""
    server = market_server
    other = StdioServer([str(venv / "bin" / "python"), "-m", "codex_core"], venv_env, venv)
    other.initialize()
    try:
        # Over the protocol on one server (opting its client in to codexCore/plugins/*) ...
        params = {"pluginName": "sample", "marketplacePath": catalog_path(server)}
        server.result("plugin/install", {**params, "installAttemptId": "a1"}, timeout=120)
        assert server.wait_notification("codexCore/plugins/changed")["params"]["added"] == [
            "sample"
        ]
        # ... and the other server of the same environment answers the new method too.
        assert other.result("sample/echo", {"a": 1})["echo"] == {"a": 1}

        code, out, err = venv_cli(venv, venv_env, "plugin", "uninstall", "sample")
        assert (code, out) == (0, "uninstalled codex-plugin-sample 1.0\n"), err
        assert err.splitlines()[-1] == "2 running servers reloaded their plugins"
        changed = server.wait_notification("codexCore/plugins/changed")["params"]
        assert changed == {"added": [], "removed": ["sample"], "restartRequired": []}
        assert server.error("sample/echo", {})["code"] == -32600
        assert other.error("sample/echo", {})["code"] == -32600

        code, out, err = venv_cli(venv, venv_env, "plugin", "install", "sample")
        assert (code, out) == (0, "installed codex-plugin-sample 1.0\n"), err
        assert server.wait_notification("codexCore/plugins/changed")["params"]["added"] == [
            "sample"
        ]
        assert server.result("sample/echo", {}) == {"echo": {}, "plugin": "sample 1.0"}
        # A client that never opted in (one generated from the schema) heard nothing.
        other.barrier()
        assert [n for n in other.notifications if n["method"].startswith("codexCore/")] == []
    finally:
        other.close()
    # Once the servers are gone the CLI finds nobody (their sockets went with them).
    server.close()
    code, _out, err = venv_cli(venv, venv_env, "plugin", "uninstall", "sample")
    assert code == 0 and "reloaded" not in err, err


def test_a_dead_servers_socket_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_core.marketplace import control

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    stale = control.folder() / f"{control.environment()}-1-0.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(stale))  # bound, never listening: a server killed with -9
    unrelated = control.folder() / "another-environment-1-0.sock"
    unrelated.touch()
    assert control.reload_servers() == []
    assert not stale.exists() and unrelated.exists()
    (tmp_path / "codex-core").chmod(0o755)
    with pytest.raises(PermissionError, match="is not private to this user"):
        control.folder()
