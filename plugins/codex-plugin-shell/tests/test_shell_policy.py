"""The shell plugin's policy helpers: which commands only read, and the command environment."""

from __future__ import annotations

from codex_plugin_shell.exec import amend, environment, is_safe, truncate


def test_known_read_only_commands_are_safe() -> None:
    assert is_safe("ls -la && pwd")
    assert is_safe("git status | head -5")
    assert is_safe("find . -name '*.py'")
    assert not is_safe("touch x")
    assert not is_safe("echo hi > f.txt")
    assert not is_safe("find . -delete")
    assert not is_safe("git push")
    assert not is_safe("echo $(rm -rf x)")


def test_amendment_is_the_first_simple_command() -> None:
    assert amend("touch mock-approved.txt && echo hello") == ["touch", "mock-approved.txt"]
    assert amend("echo hi > f.txt") is None


def test_environment_policy_order() -> None:
    base = {"PATH": "/bin", "HOME": "/root", "API_KEY": "k", "AWS_REGION": "x", "LANG": "C"}
    assert environment(base, {}) == {"PATH": "/bin", "HOME": "/root", "AWS_REGION": "x",
                                     "LANG": "C"}  # fmt: skip
    assert environment(base, {"ignore_default_excludes": True})["API_KEY"] == "k"
    assert environment(base, {"inherit": "core"}) == {"PATH": "/bin", "HOME": "/root"}
    assert environment(base, {"inherit": "none", "set": {"CI": 1}}) == {"CI": "1"}
    assert "AWS_REGION" not in environment(base, {"exclude": ["aws_*"]})
    assert environment(base, {"include_only": ["PATH"]}) == {"PATH": "/bin"}


def test_truncation_keeps_head_and_tail() -> None:
    text = "a" * 100 + "b" * 100
    cut = truncate(text, 10)
    assert cut.startswith("a" * 20) and cut.endswith("b" * 20) and "tokens truncated" in cut
