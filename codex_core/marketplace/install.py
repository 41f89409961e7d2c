"""Installing and uninstalling plugin distributions in the server's own environment.

Every install goes through one wheel on local disk: downloaded and hash-checked (a wheel URL),
downloaded by pip in hash-checking mode (a pinned requirement), or built (a local folder).
Its ``METADATA`` is read before anything is installed, so a plugin whose ``codex-core`` range
excludes the running kernel is refused with the environment untouched. The wheel is then
installed into ``sys.executable``'s environment: ``uv pip install --python <it>`` when uv is on
``PATH``, else ``<it> -m pip install``, with ``--require-hashes`` whenever the source carried a
hash (llm and datasette run pip inside their own interpreter for the same reason: a plugin must
land where the server imports from, llm#833). The modules only an install needs (httpx,
zipfile, the email parser) are imported by it, not when the server starts.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from codex_core import __version__
from codex_core.marketplace.catalog import Catalog, Entry, LocalSource, PypiSource, WheelSource

if TYPE_CHECKING:
    from email.message import Message

    from packaging.requirements import Requirement

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "codex_core.plugins"


class InstallError(Exception):
    """An install or uninstall that was refused or failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Installed:
    distribution: str
    version: str
    #: The version that was installed before (an upgrade), else None.
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of an install, for a progress bar or a notification.

    ``done``/``total`` count bytes while a wheel downloads (``total`` is None when the server
    does not say); the other stages are steps without a measure.
    """

    stage: Literal["downloading", "building", "verifying", "installing", "uninstalling"]
    message: str
    done: int | None = None
    total: int | None = None


ProgressFn = Callable[[Progress], None]


def quiet(progress: Progress) -> None:
    """The default progress callback: nobody is watching."""


def milestones(report: ProgressFn) -> ProgressFn:
    """``report`` only what changed: a new stage or message, or the next whole percent of a
    download (not every 64 KiB chunk)."""
    last: list[tuple[str, str, int | None]] = []

    def forward(progress: Progress) -> None:
        percent = None
        if progress.done is not None and progress.total:
            percent = progress.done * 100 // progress.total
        key = (progress.stage, progress.message, percent)
        if last and last[0] == key:
            return
        last[:] = [key]
        report(progress)

    return forward


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


def install(
    catalog: Catalog, entry: Entry, progress: ProgressFn = quiet, *, upgrade: bool = False
) -> Installed:
    """Fetch, check and install one catalog entry; raises ``InstallError`` before any change.

    With ``upgrade`` the distribution must be installed already, and is replaced by the
    catalog's version (nothing is run when that is the installed one). Either way the wheel is
    checked first (its hash, the kernel range, and for an upgrade the ranges installed plugins
    require of it), so a refusal leaves the environment as it was.
    """
    if entry.policy.installation == "NOT_AVAILABLE":
        raise InstallError(f"plugin {entry.name} is not available for installation")
    previous = None
    if upgrade:
        distribution = distribution_name(catalog, entry)
        previous = installed_version(distribution)
        if previous is None:
            raise InstallError(f"{distribution} is not installed: install it first")
    with tempfile.TemporaryDirectory(prefix="codex-plugin-") as work:
        wheel, digest = fetch(catalog, entry, Path(work), progress)
        progress(Progress("verifying", f"checking {wheel.name}"))
        metadata = wheel_metadata(wheel)
        check_compatible(metadata)
        name, version = metadata["Name"], metadata["Version"]
        if previous == version:
            return Installed(name, version, previous)
        if upgrade:
            check_dependents(name, version)
        requirements = Path(work) / "requirements.txt"
        line = str(wheel) if digest is None else f"{wheel} --hash=sha256:{digest}"
        requirements.write_text(line + "\n")
        args = ["install", "-r", str(requirements)]
        if digest is not None:
            args.insert(1, "--require-hashes")
        progress(Progress("installing", f"installing {name} {version}"))
        run_installer(args)
    return Installed(name, version, previous)


def fetch(
    catalog: Catalog, entry: Entry, work: Path, progress: ProgressFn = quiet
) -> tuple[Path, str | None]:
    """The entry's wheel on local disk, and its sha256 when the source pinned one."""
    source = entry.source
    if isinstance(source, WheelSource):
        url = catalog.resolve(source.url)
        target = work / url.rsplit("/", 1)[-1].split("#", 1)[0]
        try:
            download(url, target, progress)
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
        progress(Progress("downloading", f"downloading {source.requirement}"))
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
    progress(Progress("building", f"building {path.name}"))
    _pip(["wheel", "--no-deps", "-w", str(work / "built"), str(path)], "build")
    wheels = sorted((work / "built").glob("*.whl"))
    if not wheels:
        raise InstallError(f"building {path} produced no wheel")
    return wheels[0], None


def download(url: str, target: Path, progress: ProgressFn = quiet) -> None:
    """Copy ``url`` (or a local path) to ``target``, reporting bytes as they arrive."""
    label = f"downloading {target.name}"
    if not url.startswith(("http://", "https://", "file://")):
        size = Path(url).stat().st_size
        shutil.copyfile(url, target)
        progress(Progress("downloading", label, size, size))
        return
    from codex_core.marketplace import download as fetcher

    fetcher.save(
        url, target, lambda done, total: progress(Progress("downloading", label, done, total))
    )


def wheel_metadata(wheel: Path) -> Message:
    import email.parser
    import zipfile

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


def requirements_on(distribution: str) -> list[tuple[str, Requirement]]:
    """Installed plugin distributions that require ``distribution``, with their requirement."""
    from packaging.requirements import InvalidRequirement, Requirement

    target = canonical(distribution)
    found: list[tuple[str, Requirement]] = []
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
                found.append((dist.metadata["Name"], requirement))
                break
    return sorted(found, key=lambda item: item[0])


def dependents(distribution: str) -> list[str]:
    """Installed plugin distributions that require ``distribution``."""
    return [name for name, _requirement in requirements_on(distribution)]


def check_dependents(distribution: str, version: str) -> None:
    """Refuse an upgrade to a version that an installed plugin's requirement excludes."""
    from packaging.version import Version

    for name, requirement in requirements_on(distribution):
        if not requirement.specifier.contains(Version(version), prereleases=True):
            raise InstallError(
                f"{name} requires {requirement}, which excludes {distribution} {version}; "
                "nothing was installed"
            )


def uninstall(distribution: str, progress: ProgressFn = quiet) -> Installed:
    version = installed_version(distribution)
    if version is None:
        raise InstallError(f"{distribution} is not installed")
    needed_by = dependents(distribution)
    if needed_by:
        raise InstallError(
            f"{distribution} is needed by {', '.join(needed_by)}: uninstall "
            f"{'it' if len(needed_by) == 1 else 'them'} first; nothing was uninstalled"
        )
    progress(Progress("uninstalling", f"uninstalling {distribution} {version}"))
    run_installer(
        ["uninstall", "-y", distribution] if not shutil.which("uv") else ["uninstall", distribution]
    )
    return Installed(distribution, version)
