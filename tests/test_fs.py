"""The built-in fs/* methods through a real server over stdio.

Every expected reply below was observed on the reference server (``codex-peer app-server``,
Codex 0.169.0) for the same request; codes and messages are compared exactly because clients
show them to people.
"""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_core.fs.methods import READ_CHUNK
from codex_core.testing.pytest_plugin import StdioServer

INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
METADATA_KEYS = ["isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs"]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="messages are Linux/musl's")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def os_error(code: int, text: str) -> dict[str, Any]:
    return {"code": INTERNAL_ERROR, "message": f"{text} (os error {code})"}


ENOENT = os_error(2, "No such file or directory")
ENOTDIR = os_error(20, "Not a directory")
EISDIR = os_error(21, "Is a directory")
EEXIST = os_error(17, "File exists")
ENOTEMPTY = os_error(39, "Directory not empty")
NUL = {"code": INVALID_REQUEST, "message": "file name contained an unexpected NUL byte"}


def invalid(message: str) -> dict[str, Any]:
    return {"code": INVALID_REQUEST, "message": message}


def read(server: StdioServer, path: Path | str) -> bytes:
    return base64.b64decode(server.result("fs/readFile", {"path": str(path)})["dataBase64"])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree with every kind of entry the methods treat differently."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "f.txt").write_text("hello")
    (root / "d").mkdir()
    (root / "d" / "x").write_text("x")
    (root / "d" / "sub").mkdir()
    (root / "d" / "sub" / "y").write_text("y")
    (root / "empty").mkdir()
    (root / "link").symlink_to(root / "f.txt")
    (root / "dlink").symlink_to(root / "d")
    (root / "dangling").symlink_to(root / "nope")
    os.mkfifo(root / "fifo")
    return root


# --------------------------------------------------------------------------- read / write


def test_write_then_read_round_trips_any_bytes(server: StdioServer, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    payload = bytes(range(256)) * 3
    assert server.result("fs/writeFile", {"path": str(path), "dataBase64": b64(payload)}) == {}
    assert path.read_bytes() == payload
    assert server.result("fs/readFile", {"path": str(path)}) == {"dataBase64": b64(payload)}

    assert server.result("fs/writeFile", {"path": str(path), "dataBase64": "aGk="}) == {}
    assert read(server, path) == b"hi"  # replaced, not appended
    assert server.result("fs/writeFile", {"path": str(path), "dataBase64": ""}) == {}
    assert server.result("fs/readFile", {"path": str(path)}) == {"dataBase64": ""}


def test_read_file_errors(server: StdioServer, tree: Path) -> None:
    def error(path: str) -> dict[str, Any]:
        return server.error("fs/readFile", {"path": path})

    assert error(f"{tree}/missing") == ENOENT
    assert error(f"{tree}/dangling") == ENOENT
    assert error(f"{tree}/f.txt/child") == ENOTDIR
    assert error(f"{tree}/" + "n" * 300) == os_error(36, "Filename too long")
    assert error(f"{tree}/nul\0byte") == NUL
    # Anything but a regular file is refused before it is opened (a FIFO would block).
    assert error(f"{tree}/d") == invalid(f"path `{tree}/d` is not a file")
    assert error(f"{tree}/dlink") == invalid(f"path `{tree}/dlink` is not a file")
    assert error(f"{tree}/fifo") == invalid(f"path `{tree}/fifo` is not a file")
    assert error("/dev/null") == invalid("path `/dev/null` is not a file")
    assert error("/") == invalid("path `/` is not a file")


@pytest.mark.parametrize(
    "size",
    [0, 1, 2, 3, READ_CHUNK - 1, READ_CHUNK, READ_CHUNK + 1, 2 * READ_CHUNK + 2],
)
def test_read_file_is_exact_across_chunk_boundaries(
    server: StdioServer, tmp_path: Path, size: int
) -> None:
    """The file is encoded a chunk at a time and replies over 1 MiB go out a piece at a time:
    neither may show in the result."""
    path = tmp_path / "data.bin"
    payload = os.urandom(size)
    path.write_bytes(payload)
    result = server.result("fs/readFile", {"path": str(path)}, timeout=30)
    assert result == {"dataBase64": b64(payload)}


def test_read_file_follows_symlinks_and_reads_procfs(server: StdioServer, tree: Path) -> None:
    assert read(server, tree / "link") == b"hello"
    # /proc files report size 0; they are read to the end all the same.
    assert read(server, "/proc/self/status").startswith(b"Name:")


def test_read_file_refuses_files_over_512_mib(server: StdioServer, tmp_path: Path) -> None:
    big = tmp_path / "big"
    with big.open("wb") as file:
        file.truncate(512 * 1024 * 1024 + 1)  # sparse: costs no disk
    assert server.error("fs/readFile", {"path": str(big)}) == invalid(
        "file is too large to read: limit is 536870912 bytes"
    )


def test_paths_are_normalized_without_touching_the_disk(server: StdioServer, tree: Path) -> None:
    for spelling in (
        f"{tree}/f.txt/",
        f"{tree}/./f.txt",
        f"{tree}//f.txt",
        f"{tree}/no-such-dir/../f.txt",
        f"/{tree}/f.txt",
        f"/../..{tree}/f.txt",
    ):
        assert read(server, spelling) == b"hello", spelling
    # Messages name the normalized path.
    assert server.error("fs/readFile", {"path": f"{tree}/d/sub/.."}) == invalid(
        f"path `{tree}/d` is not a file"
    )
    # A trailing slash does not make a symlink to a directory mean the directory.
    metadata = server.result("fs/getMetadata", {"path": f"{tree}/dlink/"})
    assert metadata["isSymlink"] is True
    server.result("fs/writeFile", {"path": f"{tree}/new.txt/", "dataBase64": "aGk="})
    assert (tree / "new.txt").read_bytes() == b"hi"


def test_write_file_errors(server: StdioServer, tree: Path) -> None:
    def error(path: str) -> dict[str, Any]:
        return server.error("fs/writeFile", {"path": path, "dataBase64": "aGk="})

    assert error(f"{tree}/no-such-dir/x.txt") == ENOENT  # parents are not created
    assert error(f"{tree}/d") == EISDIR
    assert error(f"{tree}/f.txt/child") == ENOTDIR
    assert error(f"{tree}/nul\0byte") == NUL
    assert error("/proc/version") == os_error(5, "I/O error")


def test_write_file_goes_through_symlinks(server: StdioServer, tree: Path) -> None:
    server.result("fs/writeFile", {"path": str(tree / "link"), "dataBase64": "aGk="})
    assert (tree / "link").is_symlink()
    assert (tree / "f.txt").read_bytes() == b"hi"
    server.result("fs/writeFile", {"path": str(tree / "dangling"), "dataBase64": "aGk="})
    assert (tree / "nope").read_bytes() == b"hi"  # a dangling link's target is created


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("@", "Invalid symbol 64, offset 0."),
        ("abc", "Invalid padding"),
        ("aGk", "Invalid padding"),
        ("ab=", "Invalid padding"),
        ("a", "Invalid input length: 1"),
        ("aGkxa", "Invalid input length: 5"),
        ("ab==", "Invalid last symbol 98, offset 1."),
        ("aGl=", "Invalid last symbol 108, offset 2."),
        ("aGk=\n", "Invalid symbol 10, offset 4."),
        ("aG k=", "Invalid symbol 32, offset 2."),
        ("-_-_", "Invalid symbol 45, offset 0."),
        ("aGk=aGk=", "Invalid symbol 61, offset 3."),
        ("a===", "Invalid symbol 61, offset 1."),
        ("=", "Invalid symbol 61, offset 0."),
        ("aGé=", "Invalid symbol 195, offset 2."),
    ],
)
def test_write_file_rejects_what_the_reference_rejects(
    server: StdioServer, tmp_path: Path, data: str, problem: str
) -> None:
    path = tmp_path / "bad.txt"
    assert server.error("fs/writeFile", {"path": str(path), "dataBase64": data}) == invalid(
        f"fs/writeFile requires valid base64 dataBase64: {problem}"
    )
    assert not path.exists()


# --------------------------------------------------------------------------- metadata


def test_get_metadata(server: StdioServer, tree: Path) -> None:
    def metadata(name: str) -> dict[str, Any]:
        result = server.result("fs/getMetadata", {"path": f"{tree}/{name}"})
        assert list(result) == METADATA_KEYS
        return dict(result)

    mtime_ms = (tree / "f.txt").stat().st_mtime_ns // 1_000_000
    assert metadata("f.txt") == {
        "isDirectory": False,
        "isFile": True,
        "isSymlink": False,
        "createdAtMs": 0,  # Linux's stat has no birth time (nor does the reference's)
        "modifiedAtMs": mtime_ms,
    }
    # A symlink reports its target's type and times, and that it is a link.
    assert metadata("link") == {**metadata("f.txt"), "isSymlink": True}
    assert metadata("d") | {"modifiedAtMs": 0} == {
        "isDirectory": True,
        "isFile": False,
        "isSymlink": False,
        "createdAtMs": 0,
        "modifiedAtMs": 0,
    }
    assert metadata("dlink") == {**metadata("d"), "isSymlink": True}
    assert metadata("fifo")["isFile"] is False
    assert metadata("fifo")["isDirectory"] is False

    os.utime(tree / "empty", ns=(0, -1_500_000_000))
    assert metadata("empty")["modifiedAtMs"] == 0  # before the epoch
    os.utime(tree / "empty", ns=(0, 1_234_567_890_123_456_789))
    assert metadata("empty")["modifiedAtMs"] == 1_234_567_890_123  # truncated, not rounded

    for name, error in [("dangling", ENOENT), ("missing", ENOENT), ("f.txt/x", ENOTDIR)]:
        assert server.error("fs/getMetadata", {"path": f"{tree}/{name}"}) == error


def test_get_metadata_pipelined(server: StdioServer, tree: Path) -> None:
    # Requests run concurrently; each answer must still belong to its own request. (Kept well
    # under the reference's queue limit, past which it answers -32001 "Server overloaded".)
    ids = list(range(50_000, 50_064))
    for request_id in ids:
        path = f"{tree}/{'d' if request_id % 2 else 'missing'}"
        server.send({"id": request_id, "method": "fs/getMetadata", "params": {"path": path}})
    for request_id in ids:
        response = server.wait_response(request_id)
        if request_id % 2:
            assert response["result"]["isDirectory"] is True
        else:
            assert response["error"] == ENOENT


# --------------------------------------------------------------------------- directories


def test_create_directory(server: StdioServer, tree: Path) -> None:
    def create(path: str, **flags: Any) -> Any:
        return server.request("fs/createDirectory", {"path": path, **flags})

    assert create(f"{tree}/n1")["result"] == {}
    assert create(f"{tree}/n1")["result"] == {}  # recursive defaults to true: no error
    assert create(f"{tree}/n1", recursive=None)["result"] == {}
    assert create(f"{tree}/n1", recursive=False)["error"] == EEXIST
    assert create(f"{tree}/a/b/c")["result"] == {}
    assert (tree / "a" / "b" / "c").is_dir()
    assert create(f"{tree}/p/q", recursive=False)["error"] == ENOENT
    assert create(f"{tree}/f.txt")["error"] == EEXIST
    assert create(f"{tree}/f.txt", recursive=False)["error"] == EEXIST
    assert create(f"{tree}/f.txt/sub")["error"] == ENOTDIR
    assert create(f"{tree}/dlink")["result"] == {}  # a link to a directory is a directory
    assert create(f"{tree}/dangling")["error"] == EEXIST
    assert create(f"{tree}/dangling/sub")["error"] == EEXIST  # not ENOENT, unlike os.makedirs
    assert create("/")["result"] == {}
    assert create("/", recursive=False)["error"] == EEXIST
    assert create(f"{tree}/nul\0")["error"] == NUL


def test_read_directory_lists_direct_children(server: StdioServer, tree: Path) -> None:
    os.mkdir(os.fsencode(tree / "d" / "odd"))
    (tree / "d" / "odd" / "caf\u00e9 \u2603").write_text("")
    Path(os.fsdecode(os.fsencode(tree / "d" / "odd") + b"/bad\xff\xfename")).write_text("")
    (tree / "d" / "rel").symlink_to("../f.txt")
    (tree / "d" / "gone").symlink_to("nowhere")

    entries = server.result("fs/readDirectory", {"path": f"{tree}/d"})["entries"]
    assert sorted(entries, key=lambda entry: entry["fileName"]) == [
        {"fileName": "odd", "isDirectory": True, "isFile": False},
        {"fileName": "rel", "isDirectory": False, "isFile": True},  # links are followed
        {"fileName": "sub", "isDirectory": True, "isFile": False},
        {"fileName": "x", "isDirectory": False, "isFile": True},
    ]  # direct children only; the dangling link is left out
    names = [
        entry["fileName"]
        for entry in server.result("fs/readDirectory", {"path": f"{tree}/d/odd"})["entries"]
    ]
    assert sorted(names) == ["bad\ufffd\ufffdname", "caf\u00e9 \u2603"]  # lossy, like Rust

    entries = server.result("fs/readDirectory", {"path": str(tree)})["entries"]
    by_name = {entry.pop("fileName"): entry for entry in entries}
    assert set(by_name) == {"f.txt", "d", "empty", "link", "dlink", "fifo"}
    assert by_name["dlink"] == {"isDirectory": True, "isFile": False}
    assert by_name["fifo"] == {"isDirectory": False, "isFile": False}

    assert server.result("fs/readDirectory", {"path": f"{tree}/empty"}) == {"entries": []}
    assert server.result("fs/readDirectory", {"path": f"{tree}/dlink"})["entries"]
    for name, error in [("f.txt", ENOTDIR), ("missing", ENOENT), ("dangling", ENOENT)]:
        assert server.error("fs/readDirectory", {"path": f"{tree}/{name}"}) == error


def test_remove(server: StdioServer, tree: Path) -> None:
    def remove(path: str, **flags: Any) -> Any:
        return server.request("fs/remove", {"path": path, **flags})

    assert remove(f"{tree}/missing")["result"] == {}  # force defaults to true
    assert remove(f"{tree}/missing", force=None)["result"] == {}
    assert remove(f"{tree}/missing", force=False)["error"] == ENOENT
    assert remove(f"{tree}/f.txt/x")["error"] == ENOTDIR  # only "missing" is forgiven
    assert remove(f"{tree}/d", recursive=False)["error"] == ENOTEMPTY
    assert remove(f"{tree}/empty", recursive=False)["result"] == {}
    assert not (tree / "empty").exists()

    # Links are removed, never followed.
    assert remove(f"{tree}/dlink", recursive=False)["result"] == {}
    assert remove(f"{tree}/link", force=False)["result"] == {}
    assert remove(f"{tree}/dangling")["result"] == {}
    assert (tree / "d" / "x").exists()
    assert (tree / "f.txt").exists()
    assert not (tree / "dlink").is_symlink()

    assert remove(f"{tree}/fifo")["result"] == {}
    assert remove(f"{tree}/d")["result"] == {}  # recursive defaults to true
    assert not (tree / "d").exists()
    assert remove(f"{tree}/nul\0")["error"] == NUL
    assert sorted(path.name for path in tree.iterdir()) == ["f.txt"]


# --------------------------------------------------------------------------- copy


def copy(server: StdioServer, source: Path | str, destination: Path | str, **flags: Any) -> Any:
    params = {"sourcePath": str(source), "destinationPath": str(destination), **flags}
    return server.request("fs/copy", params)


def test_copy_file(server: StdioServer, tree: Path) -> None:
    script = tree / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o751)
    assert copy(server, script, tree / "copy.sh")["result"] == {}
    assert (tree / "copy.sh").read_text() == "#!/bin/sh\n"
    assert stat.S_IMODE((tree / "copy.sh").stat().st_mode) == 0o751

    assert copy(server, tree / "d" / "x", tree / "copy.sh", recursive=True)["result"] == {}
    assert (tree / "copy.sh").read_text() == "x"  # overwritten; `recursive` is ignored for files

    assert copy(server, tree / "f.txt", tree / "d")["error"] == EISDIR
    assert copy(server, tree / "f.txt", tree / "nodir" / "x")["error"] == ENOENT
    assert copy(server, tree / "f.txt", tree / "f.txt" / "x")["error"] == ENOTDIR
    assert copy(server, tree / "missing", tree / "x")["error"] == ENOENT
    assert copy(server, tree / "fifo", tree / "fifo2")["error"] == invalid(
        "fs/copy only supports regular files, directories, and symlinks"
    )
    assert copy(server, "/dev/null", tree / "null")["error"] == invalid(
        "fs/copy only supports regular files, directories, and symlinks"
    )
    assert copy(server, f"{tree}/nul\0", tree / "x")["error"] == NUL
    assert copy(server, tree / "f.txt", f"{tree}/nul\0")["error"] == NUL
    assert copy(server, tree / "missing", f"{tree}/nul\0")["error"] == ENOENT  # source first


def test_copy_file_onto_itself_keeps_the_data(server: StdioServer, tree: Path) -> None:
    # The reference answers {} too, but truncates the file to zero bytes; we keep it intact.
    assert copy(server, tree / "f.txt", tree / "f.txt")["result"] == {}
    assert copy(server, tree / "f.txt", tree / "link")["result"] == {}
    assert (tree / "f.txt").read_text() == "hello"


def test_copy_symlinks_copies_the_links(server: StdioServer, tree: Path) -> None:
    assert copy(server, tree / "dlink", tree / "dlink2")["result"] == {}  # no `recursive` needed
    assert os.readlink(tree / "dlink2") == str(tree / "d")
    assert copy(server, tree / "dangling", tree / "dangling2")["result"] == {}
    assert os.readlink(tree / "dangling2") == str(tree / "nope")
    assert copy(server, tree / "link", tree / "f.txt")["error"] == EEXIST


def test_copy_directory(server: StdioServer, tree: Path) -> None:
    (tree / "d" / "rel").symlink_to("../f.txt")
    os.mkfifo(tree / "d" / "fifo")
    needs_recursive = invalid("fs/copy requires recursive: true when sourcePath is a directory")
    assert copy(server, tree / "d", tree / "d2")["error"] == needs_recursive
    assert copy(server, tree / "d", tree / "d2", recursive=False)["error"] == needs_recursive
    assert not (tree / "d2").exists()

    assert copy(server, tree / "d", tree / "d2", recursive=True)["result"] == {}
    assert sorted(path.name for path in (tree / "d2").iterdir()) == ["rel", "sub", "x"]  # no FIFO
    assert (tree / "d2" / "sub" / "y").read_text() == "y"
    assert os.readlink(tree / "d2" / "rel") == "../f.txt"

    # Copying onto an existing tree merges into it, and fails on the first existing link.
    (tree / "d2" / "extra").write_text("kept")
    (tree / "d2" / "x").write_text("old")
    assert copy(server, tree / "d", tree / "d2", recursive=True)["error"] == EEXIST
    assert (tree / "d2" / "extra").read_text() == "kept"

    assert copy(server, tree / "d", tree / "f.txt", recursive=True)["error"] == EEXIST
    assert copy(server, tree / "d", tree / "a" / "b" / "c", recursive=True)["result"] == {}
    assert (tree / "a" / "b" / "c" / "sub" / "y").exists()  # missing parents are created
    assert copy(server, tree / "d" / "sub", tree / "d", recursive=True)["result"] == {}

    into_itself = invalid("fs/copy cannot copy a directory to itself or one of its descendants")
    for destination in ("d", "d/sub/inner", "dlink/inner", "d/../d"):
        response = copy(server, tree / "d", f"{tree}/{destination}", recursive=True)
        assert response["error"] == into_itself, destination


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("fs/readFile", {"path": "relative/file.txt"}),
        ("fs/writeFile", {"path": "out.txt", "dataBase64": "aGk="}),
        ("fs/createDirectory", {"path": "dir"}),
        ("fs/getMetadata", {"path": ""}),
        ("fs/readDirectory", {"path": "."}),
        ("fs/remove", {"path": "~/x"}),
        ("fs/copy", {"sourcePath": "a", "destinationPath": "/tmp/b"}),
        ("fs/copy", {"sourcePath": "/tmp/a", "destinationPath": "b"}),
    ],
)
def test_relative_paths_are_refused(server: StdioServer, method: str, params: Any) -> None:
    assert server.error(method, params) == invalid(
        "Invalid request: AbsolutePathBuf deserialized without a base path"
    )
