"""Install a plugin from a catalog into a running server, use it, uninstall it: no restart.

The server runs in a throwaway venv (``--system-site-packages --without-pip``, plus a ``.pth``
that adds this environment's site-packages) so installs land there and never in the repo's
environment. The catalog and wheels are served from a loopback HTTP server.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import subprocess
import sys
import sysconfig
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, StdioServer, write_distribution

FIXTURES = REPO / "tests" / "fixtures" / "marketplace"


def build_wheel(out: Path, name: str, module_source: str, requires: list[str]) -> Path:
    """A pure-Python wheel with one module and its ``codex_core.plugins`` entry point.

    Built by hand: this machine has no ``wheel``/hatchling to run ``pip wheel`` offline.
    """
    module = name.replace("-", "_")
    info = f"{module}-1.0.dist-info"
    files = {
        f"{module}.py": module_source,
        f"{info}/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
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
    wheel = out / f"{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server over ``tmp_path / "www"``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


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


@pytest.fixture
def market(served: str, tmp_path: Path) -> dict[str, str]:
    www = tmp_path / "www"
    sample = build_wheel(
        www,
        "codex-plugin-sample",
        (FIXTURES / "codex_plugin_sample.py").read_text(),
        ["codex-core>=0.1,<1"],
    )
    future = build_wheel(
        www,
        "codex-plugin-future",
        (FIXTURES / "codex_plugin_sample.py").read_text().replace("sample/", "future/"),
        ["codex-core>=99"],
    )
    text = (FIXTURES / "marketplace.json.in").read_text()
    text = text.replace("@SAMPLE_SHA256@", sha256(sample))
    text = text.replace("@FUTURE_SHA256@", sha256(future))
    text = text.replace("@WRONG_SHA256@", "0" * 64)
    text = text.replace("@LONG_PROMPT@", "x" * 129)
    (www / "marketplace.json").write_text(text)
    (www / "broken").mkdir()
    (www / "broken" / "marketplace.json").write_text(
        (FIXTURES / "broken-marketplace.json").read_text()
    )
    return {"good": served + "marketplace.json", "broken": served + "broken/marketplace.json"}


@pytest.fixture
def market_server(
    venv: Path, market: dict[str, str], server_env: dict[str, str], tmp_path: Path
) -> Iterator[StdioServer]:
    home = Path(server_env["CODEX_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        "[marketplace]\ndefault = false\n\n"
        f'[marketplaces.broken]\nsource = "{market["broken"]}"\n\n'
        f'[marketplaces.test]\nsource = "{market["good"]}"\n'
    )
    env = dict(server_env)
    env.pop("PYTHONPATH", None)
    server = StdioServer(
        [str(venv / "bin" / "python"), "-m", "codex_core.cli"], env=env, cwd=tmp_path
    )
    server.initialize()
    yield server
    server.close()


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
    # the git-only entry is not a Python plugin: skipped, the others list
    assert [p["name"] for p in market["plugins"]] == ["sample", "tampered", "future"]
    sample = market["plugins"][0]
    assert sample["id"] == "sample@test-market"
    assert sample["installed"] is False and sample["source"] == {"type": "remote"}
    assert sample["installPolicy"] == "AVAILABLE" and sample["authPolicy"] == "ON_USE"
    assert sample["interface"]["defaultPrompt"] == ["Echo something", "Two", "Three"]

    read = server.result("plugin/read", {"pluginName": "sample"})["plugin"]
    assert read["marketplaceName"] == "test-market"
    assert read["summary"]["id"] == "sample@test-market"

    assert server.error("sample/echo", {"a": 1})["code"] == -32600  # not there yet
    before = site_packages(venv)
    result = server.result("plugin/install", {"pluginName": "sample"}, timeout=120)
    assert result == {"authPolicy": "ON_USE", "appsNeedingAuth": []}
    changed = server.wait_notification("codexCore/plugins/changed")
    assert changed["params"]["added"] == ["sample"]
    assert server.result("sample/echo", {"a": 1}) == {"echo": {"a": 1}, "plugin": "sample"}
    assert server.result("plugin/read", {"pluginName": "sample"})["plugin"]["summary"]["installed"]
    installed = server.result("plugin/installed", {})
    # "tampered" names the same distribution, so it counts as installed too
    assert [p["name"] for p in installed["marketplaces"][0]["plugins"]] == ["sample", "tampered"]

    assert server.result("plugin/uninstall", {"pluginId": "sample@test-market"}, timeout=120) == {}
    assert server.wait_notification("codexCore/plugins/changed")["params"]["removed"] == ["sample"]
    assert server.error("sample/echo", {"a": 1})["code"] == -32600
    assert site_packages(venv) == before


def test_wrong_hash_and_incompatible_range_change_nothing(
    market_server: StdioServer, venv: Path
) -> None:
    server = market_server
    before = site_packages(venv)
    error = server.error("plugin/install", {"pluginName": "tampered"}, timeout=60)
    assert "hash mismatch" in error["message"] and "nothing was installed" in error["message"]
    error = server.error("plugin/install", {"pluginName": "future"}, timeout=60)
    assert "requires codex-core>=99" in error["message"], error
    assert site_packages(venv) == before
    assert server.error("future/echo", {})["code"] == -32600


def test_uninstall_refused_while_a_plugin_depends_on_it(
    market_server: StdioServer, venv: Path
) -> None:
    server = market_server
    server.result("plugin/install", {"pluginName": "sample"}, timeout=120)
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
    assert server.result("sample/echo", {}) == {"echo": {}, "plugin": "sample"}
