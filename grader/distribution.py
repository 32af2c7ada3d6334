"""Source trees that ship this grader with one pack: the Gradescope autograder zip and the
student release.

Such a tree holds the pack at its top level (`pack.toml`, `exercises/`, `tests/`, and
`solutions/` or a release's `release.json` + `recorded.pt`), the `grader/` package beside it,
and a `pyproject.toml` that installs both: `pip install -e .` finds the pack beside the
package, a regular install ships it as `grader/bundled/`, as this repository's own wheel does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "torch-grader"
version = "{version}"
requires-python = ">=3.11"
dependencies = ["torch>=2.2", "numpy>=1.24", "hypothesis>=6.100", "click>=8.1", "jinja2>=3.1",
                "pytest>=8.2"]

[project.scripts]
grader = "grader.cli:run"

[tool.setuptools]
packages = [{packages}]

[tool.setuptools.package-dir]
{package_dirs}

[tool.setuptools.package-data]
"grader" = ["templates/*.html", "templates/*.css"]
"grader.bundled" = ["pack.toml", "release.json", "recorded.pt"]
"""


def pyproject_text(version: str, pack_folders: list[str], grader_packages: list[str]) -> str:
    """The tree's pyproject.toml: the grader's packages, and the pack's folders mapped to
    `grader.bundled.<folder>`."""
    bundled = ["grader.bundled", *(f"grader.bundled.{folder}" for folder in pack_folders)]
    mapping = ['"grader.bundled" = "."'] + [f'"grader.bundled.{folder}" = "{folder}"'
                                           for folder in pack_folders]
    names = ", ".join(f'"{name}"' for name in [*grader_packages, *bundled])
    return PYPROJECT.format(version=version, packages=names, package_dirs="\n".join(mapping))


def grader_sources() -> dict[str, Path]:
    """This grader's own files for such a tree: every module (not its tests, not the bundled
    pack) and the report templates, by their name in the tree."""
    from grader.formats import report

    package = Path(__file__).resolve().parent
    files: dict[str, Path] = {}
    for source in sorted(package.rglob("*.py")):
        relative = source.relative_to(package)
        if "__pycache__" in relative.parts or relative.parts[0] in ("bundled", "tests"):
            continue
        files[f"grader/{relative.as_posix()}"] = source
    for source in sorted(report.template_folder().glob("*")):
        if source.suffix in (".html", ".css"):
            files[f"grader/templates/{source.name}"] = source
    return files


def grader_packages(files: dict[str, Path]) -> list[str]:
    """The dotted names of the grader's packages among `files`."""
    folders = {str(Path(name).parent) for name in files if name.endswith(".py")}
    return sorted(folder.replace("/", ".") for folder in folders)


def pack_sources(root: Path, folders: tuple[str, ...],
                 transform: Callable[[str, str], str] | None = None) -> dict[str, str]:
    """A pack's files by their name in the tree (`pack.toml`, `<folder>/...`), as text;
    `transform(name, text)` may rewrite a file (e.g. cut hidden checks out of the tests)."""
    texts: dict[str, str] = {"pack.toml": (root / "pack.toml").read_text(encoding="utf-8")
                             if (root / "pack.toml").is_file() else _metadata_toml(root)}
    for folder in folders:
        for source in sorted((root / folder).rglob("*.py")):
            if "__pycache__" in source.parts:
                continue
            name = f"{folder}/{source.relative_to(root / folder).as_posix()}"
            text = source.read_text(encoding="utf-8")
            texts[name] = transform(name, text) if transform else text
    return texts


def _metadata_toml(root: Path) -> str:
    """A pack whose metadata is `[tool.grader]` of its pyproject.toml, written as pack.toml."""
    from grader.pack import load

    chosen = load(root)
    parts = ", ".join(f'"{part}"' for part in chosen.parts)
    return f'title = "{chosen.title}"\nparts = [{parts}]\nexamples = {chosen.examples}\n'
