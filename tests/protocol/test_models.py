"""The generated models: every definition loads lazily, in a fresh interpreter, in any order."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codex_core.protocol.base import WireModel, WireRootModel

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "codex_core" / "protocol" / "schema"
ENVELOPE_UNIONS = {"ClientRequest", "ClientNotification", "ServerRequest", "ServerNotification"}


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter with the repo importable; its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def schema_definitions(kind: str) -> set[str]:
    bundle = json.loads((SCHEMA / kind / "codex_app_server_protocol.schemas.json").read_text())
    names = set(bundle["definitions"]) | set(bundle["definitions"]["v2"])
    return names - {"v2"}


def test_every_schema_definition_has_a_model() -> None:
    from codex_core.protocol.models import DEFINITIONS, MODULES

    assert schema_definitions("experimental") - ENVELOPE_UNIONS == set(DEFINITIONS)
    assert set(DEFINITIONS) <= set(MODULES)


def test_every_definition_loads_in_a_fresh_interpreter_in_random_order() -> None:
    seed = int(os.environ.get("PROTOCOL_LOAD_SEED", random.randrange(1 << 30)))
    print(f"load order seed: {seed} (set PROTOCOL_LOAD_SEED to replay)")
    out = run_python(
        f"""
        import random, sys
        from codex_core.protocol import models
        from codex_core.protocol.base import WireModel, WireRootModel

        names = sorted(models.DEFINITIONS)
        random.Random({seed}).shuffle(names)
        for name in names:
            cls = models.load(name)
            assert issubclass(cls, (WireModel, WireRootModel)), name
            assert cls.__name__ in (name, name + "RootModel"), (name, cls.__name__)
            cls.model_rebuild(force=True)
            assert cls.__pydantic_complete__, name
        # every other public name resolves too
        for name in sorted(models.MODULES):
            getattr(models, name)
        print(len(names), len([m for m in sys.modules if m.startswith(models.__name__ + "._")]))
        """
    )
    definitions, modules = map(int, out.split())
    assert definitions > 900
    assert modules > 900


def test_loading_one_model_imports_only_its_dependencies() -> None:
    out = run_python(
        """
        import sys
        from codex_core.protocol.models import load
        load("InitializeParams")
        loaded = sorted(m for m in sys.modules if m.startswith("codex_core.protocol.models._"))
        print(" ".join(loaded))
        """
    )
    loaded = set(out.split())
    assert "codex_core.protocol.models._initialize_params" in loaded
    assert "codex_core.protocol.models._thread" not in loaded
    assert len(loaded) < 10, loaded


def test_package_import_is_cheap() -> None:
    out = run_python(
        """
        import sys, time
        import codex_core.protocol
        before = set(sys.modules)
        start = time.perf_counter()
        import codex_core.protocol.models
        elapsed = time.perf_counter() - start
        print(f"{elapsed * 1000:.2f}", " ".join(sorted(set(sys.modules) - before)))
        """
    )
    elapsed_ms, *new_modules = out.split()
    print(f"import codex_core.protocol.models: {elapsed_ms} ms")
    # What else gets imported depends on the interpreter (a bare venv has not yet imported
    # `typing`, for one); what matters is that no model and not pydantic is.
    heavy = [m for m in new_modules if m.startswith(("pydantic", "codex_core.protocol.models."))]
    assert heavy == [], heavy


def test_import_timings() -> None:
    """Measured, printed, not asserted (see the report of ``pytest -s``)."""
    out = run_python(
        """
        import time
        t0 = time.perf_counter()
        import codex_core.protocol.models as models
        t1 = time.perf_counter()
        init = models.load("InitializeParams")
        init.model_validate({"clientInfo": {"name": "x", "version": "1"}})
        t2 = time.perf_counter()
        models.load("ThreadStartResponse")
        t3 = time.perf_counter()
        for name in sorted(models.DEFINITIONS):
            models.load(name)
        t4 = time.perf_counter()
        for name in sorted(models.DEFINITIONS):
            models.load(name).model_rebuild(force=True)
        t5 = time.perf_counter()
        ms = lambda a, b: f"{(b - a) * 1000:.1f}"
        print(f"import codex_core.protocol.models: {ms(t0, t1)} ms")
        print(f"first load('InitializeParams') + validate (imports pydantic): {ms(t1, t2)} ms")
        print(f"first load('ThreadStartResponse'): {ms(t2, t3)} ms")
        print(f"load every other definition: {ms(t3, t4)} ms")
        print(f"build every validator (model_rebuild): {ms(t4, t5)} ms")
        """
    )
    print("\n" + out)


def test_load_and_attribute_access() -> None:
    from codex_core.protocol import models
    from codex_core.protocol.models import ThreadStartParams, load

    assert load("ThreadStartParams") is ThreadStartParams
    assert issubclass(ThreadStartParams, WireModel)
    # a non-object definition: the alias for annotations, a RootModel for load()
    thread_item_model = load("ThreadItem")
    assert issubclass(thread_item_model, WireRootModel)
    assert thread_item_model is models.ThreadItemRootModel
    assert models.ROOT_MODELS["ThreadItem"] == "ThreadItemRootModel"
    # helper classes (union variants) are reachable by name too
    assert load("AgentMessageThreadItem") is models.AgentMessageThreadItem
    assert "ThreadStartParams" in dir(models)


def test_unknown_names() -> None:
    from codex_core.protocol import models

    with pytest.raises(KeyError, match=r"not a definition.*ThreadStartParams"):
        models.load("ThreadStartParam")
    with pytest.raises(KeyError, match="envelope union"):
        models.load("ClientRequest")
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


def test_class_names_follow_the_schema() -> None:
    import re

    from codex_core.protocol.models import DEFINITIONS, MODULES

    numbered = sorted(n for n in MODULES if re.search(r"\d+$", n) and n not in DEFINITIONS)
    assert numbered == []
    for name in ("ThreadStartParams", "InitializeParams", "Thread", "ThreadItem", "UserInput"):
        assert name in DEFINITIONS
