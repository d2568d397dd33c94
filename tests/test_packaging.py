"""The wheel built from this checkout holds the package, all of it, and nothing else.

Built in place (``python -m build --wheel --no-isolation``: hatchling is in the dev extra), so
it takes a second or two. `.ci/wheel_check` goes further: the sdist and the wheel built from
it, `twine check`, and the wheel installed into a fresh virtualenv and run from outside the
checkout.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest

import dify_ingest_tools

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dify_ingest_tools"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("*.whl")
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        yield archive


def _files(wheel: zipfile.ZipFile) -> list[str]:
    return [name for name in wheel.namelist() if not name.endswith("/")]


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [
        n
        for n in _files(wheel)
        if n.split("/")[0].endswith(".dist-info") and n.endswith(f"/{name}")
    ]
    return wheel.read(path).decode()


def _checkout_package_files() -> set[str]:
    """The package's files here: tracked or new (not ignored) in git, else on disk."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "--", PACKAGE],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    else:  # an unpacked sdist
        listed = [
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / PACKAGE).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        ]
    return {name for name in listed if (ROOT / name).is_file()}


def test_the_wheel_holds_every_file_of_the_package(wheel: zipfile.ZipFile) -> None:
    in_wheel = {name for name in _files(wheel) if name.startswith(f"{PACKAGE}/")}
    expected = _checkout_package_files()
    assert f"{PACKAGE}/py.typed" in in_wheel
    assert sorted(expected - in_wheel) == []
    assert sorted(in_wheel - expected) == []


def test_the_wheel_holds_nothing_but_the_package_and_its_metadata(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in _files(wheel)}
    (dist_info,) = tops - {PACKAGE}
    assert dist_info == f"{PACKAGE}-{dify_ingest_tools.__version__}.dist-info"
    assert [
        n for n in _files(wheel) if "tests/" in n or "notebooks/" in n or n.endswith(".pyc")
    ] == []


def test_every_folder_of_the_package_is_a_regular_package(wheel: zipfile.ZipFile) -> None:
    modules = [name for name in _files(wheel) if name.endswith(".py")]
    folders = {name.rsplit("/", 1)[0] for name in modules}
    assert len(folders) > 1  # the subpackages are there at all
    assert sorted(f for f in folders if f"{f}/__init__.py" not in modules) == []


def test_the_console_script_names_a_callable_main(wheel: zipfile.ZipFile) -> None:
    scripts = _dist_info(wheel, "entry_points.txt").split("[console_scripts]")[1]
    (line,) = [line for line in scripts.splitlines() if line.startswith("dify-ingest ")]
    module, _, attribute = line.split("=", 1)[1].strip().partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_metadata_carries_the_version_and_every_extra(wheel: zipfile.ZipFile) -> None:
    metadata = Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert metadata["Version"] == dify_ingest_tools.__version__
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"langchain", "llama-index", "mcp", "otel", "redis", "notebooks", "all", "dev"} <= extras


def test_the_version_is_written_in_one_place() -> None:
    version = dify_ingest_tools.__version__
    holders = [ROOT / "pyproject.toml", *(ROOT / PACKAGE).rglob("*.py")]
    written = [
        path.relative_to(ROOT).as_posix()
        for path in holders
        if version in path.read_text(encoding="utf-8") and path.name != "_version.py"
    ]
    assert (ROOT / PACKAGE / "_version.py").read_text().strip() == f'__version__ = "{version}"'
    assert written == []
