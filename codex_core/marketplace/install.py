"""Installing and uninstalling plugin distributions in the server's own environment.

Every install goes through one wheel on local disk: downloaded and hash-checked (a wheel URL),
downloaded by pip in hash-checking mode (a pinned requirement), or built (a local folder).
Its ``METADATA`` is read before anything is installed, so a plugin whose ``codex-core`` range
excludes the running kernel is refused with the environment untouched. The wheel is then
installed into ``sys.executable``'s environment: ``uv pip install --python <it>`` when uv is on
``PATH``, else ``<it> -m pip install``, with ``--require-hashes`` whenever the source carried a
hash (llm and datasette run pip inside their own interpreter for the same reason: a plugin must
land where the server imports from, llm#833).
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib
import importlib.metadata
import logging
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from codex_core import __version__
from codex_core.marketplace.catalog import Catalog, Entry, LocalSource, PypiSource, WheelSource

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "codex_core.plugins"


class InstallError(Exception):
    """An install or uninstall that was refused or failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Installed:
    distribution: str
    version: str


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def distribution_name(catalog: Catalog, entry: Entry) -> str:
    """The distribution an entry installs (what ``installed`` and uninstall look for)."""
    if entry.package:
        return canonical(entry.package)
    source = entry.source
    if isinstance(source, PypiSource):
        from packaging.requirements import Requirement

        return canonical(Requirement(source.requirement).name)
    if isinstance(source, WheelSource):
        return canonical(source.url.rsplit("/", 1)[-1].split("-", 1)[0])
    pyproject = Path(catalog.resolve(source.path)) / "pyproject.toml"
    try:
        return canonical(tomllib.loads(pyproject.read_text())["project"]["name"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return canonical(entry.name)


def installed_version(distribution: str) -> str | None:
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- install


def install(catalog: Catalog, entry: Entry) -> Installed:
    """Fetch, check and install one catalog entry; raises ``InstallError`` before any change."""
    if entry.policy.installation == "NOT_AVAILABLE":
        raise InstallError(f"plugin {entry.name} is not available for installation")
    with tempfile.TemporaryDirectory(prefix="codex-plugin-") as work:
        wheel, digest = fetch(catalog, entry, Path(work))
        metadata = wheel_metadata(wheel)
        check_compatible(metadata)
        name, version = metadata["Name"], metadata["Version"]
        requirements = Path(work) / "requirements.txt"
        line = str(wheel) if digest is None else f"{wheel} --hash=sha256:{digest}"
        requirements.write_text(line + "\n")
        args = ["install", "-r", str(requirements)]
        if digest is not None:
            args.insert(1, "--require-hashes")
        run_installer(args)
    return Installed(name, version)


def fetch(catalog: Catalog, entry: Entry, work: Path) -> tuple[Path, str | None]:
    """The entry's wheel on local disk, and its sha256 when the source pinned one."""
    source = entry.source
    if isinstance(source, WheelSource):
        url = catalog.resolve(source.url)
        target = work / url.rsplit("/", 1)[-1].split("#", 1)[0]
        try:
            if url.startswith(("http://", "https://", "file://")):
                with urllib.request.urlopen(url, timeout=60) as response:
                    target.write_bytes(response.read())
            else:
                shutil.copyfile(url, target)
        except OSError as exc:
            raise InstallError(f"failed to download {url}: {exc}") from None
        actual = hashlib.sha256(target.read_bytes()).hexdigest()
        if actual != source.sha256.lower():
            raise InstallError(
                f"hash mismatch for {url}: the catalog says sha256:{source.sha256.lower()}, "
                f"the download is sha256:{actual}; nothing was installed"
            )
        return target, actual
    if isinstance(source, PypiSource):
        requirements = work / "pinned.txt"
        hashes = " ".join(f"--hash={item}" for item in source.hashes)
        requirements.write_text(f"{source.requirement} {hashes}\n")
        args = ["download", "--no-deps", "--require-hashes", "-d", str(work / "dl")]
        if source.index_url:
            args += ["--index-url", source.index_url]
        _pip([*args, "-r", str(requirements)], "download")
        wheels = sorted((work / "dl").glob("*.whl"))
        if not wheels:
            raise InstallError(f"{source.requirement}: no wheel was downloaded")
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        return wheels[0], digest
    assert isinstance(source, LocalSource)
    path = Path(catalog.resolve(source.path))
    if not path.is_dir():
        raise InstallError(f"plugin {entry.name}: {path} is not a folder")
    _pip(["wheel", "--no-deps", "-w", str(work / "built"), str(path)], "build")
    wheels = sorted((work / "built").glob("*.whl"))
    if not wheels:
        raise InstallError(f"building {path} produced no wheel")
    return wheels[0], None


def wheel_metadata(wheel: Path) -> Message:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if not names:
                raise InstallError(f"{wheel.name} has no .dist-info/METADATA")
            text = archive.read(names[0]).decode("utf-8")
    except zipfile.BadZipFile:
        raise InstallError(f"{wheel.name} is not a wheel") from None
    return email.parser.Parser().parsestr(text)


def check_compatible(metadata: Message) -> None:
    """Refuse a distribution whose ``Requires-Dist: codex-core`` range excludes this kernel."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import Version

    for line in metadata.get_all("Requires-Dist") or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonical(requirement.name) != "codex-core" or requirement.marker:
            continue
        if not requirement.specifier.contains(Version(__version__), prereleases=True):
            raise InstallError(
                f"{metadata['Name']} {metadata['Version']} requires "
                f"codex-core{requirement.specifier}, but this is codex-core {__version__}; "
                "nothing was installed"
            )


def installer_command(args: list[str]) -> list[str]:
    """``uv pip ARGS --python <server>`` when uv exists, else ``<server> -m pip ARGS``."""
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", *args, "--python", sys.executable]
    return [sys.executable, "-m", "pip", *args]


def run_installer(args: list[str]) -> None:
    command = installer_command(args)
    if command[1] != "pip":  # pip's own flags, not meaningful for uv
        command[4:4] = ["--disable-pip-version-check", "--no-input"]
    _run(command, args[0])


def _pip(args: list[str], what: str) -> None:
    """Steps only pip does (download, wheel): always ``<server> -m pip``."""
    _run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"], what)


def _run(command: list[str], what: str) -> None:
    log.info("running %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()
        detail = "\n".join(output[-8:])
        raise InstallError(f"{what} failed (exit {done.returncode}): {detail}")


# --------------------------------------------------------------------------- uninstall


def plugin_distributions() -> dict[str, importlib.metadata.Distribution]:
    """Installed distributions that provide a ``codex_core.plugins`` entry point."""
    importlib.invalidate_caches()
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        if any(ep.group == ENTRY_POINT_GROUP for ep in dist.entry_points):
            found.setdefault(canonical(dist.metadata["Name"]), dist)
    return found


def dependents(distribution: str) -> list[str]:
    """Installed plugin distributions that require ``distribution``."""
    from packaging.requirements import InvalidRequirement, Requirement

    target = canonical(distribution)
    names: list[str] = []
    for name, dist in plugin_distributions().items():
        if name == target:
            continue
        for line in dist.requires or ():
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if canonical(requirement.name) == target and (
                requirement.marker is None or requirement.marker.evaluate({"extra": ""})
            ):
                names.append(dist.metadata["Name"])
                break
    return sorted(names)


def uninstall(distribution: str) -> Installed:
    version = installed_version(distribution)
    if version is None:
        raise InstallError(f"{distribution} is not installed")
    needed_by = dependents(distribution)
    if needed_by:
        raise InstallError(
            f"{distribution} is needed by {', '.join(needed_by)}: uninstall "
            f"{'it' if len(needed_by) == 1 else 'them'} first; nothing was uninstalled"
        )
    run_installer(
        ["uninstall", "-y", distribution] if not shutil.which("uv") else ["uninstall", distribution]
    )
    return Installed(distribution, version)
