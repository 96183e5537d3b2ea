"""The package as pip builds it: the declared licence is an SPDX expression and ships its text."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).parent.parent


def test_the_wheel_declares_eupl_and_carries_its_text_without_a_deprecation(tmp_path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path),
         str(REPOSITORY)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert "project.license` as a TOML table is deprecated" not in build.stdout + build.stderr
    [wheel] = tmp_path.glob("portvakt-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("/METADATA")))
        shipped = next(n for n in archive.namelist() if n.endswith("/licenses/LICENSE"))
        licence_text = archive.read(shipped).decode()
    headers = metadata.decode().split("\n\n", 1)[0].splitlines()
    assert "License-Expression: EUPL-1.2" in headers
    assert "License-File: LICENSE" in headers
    assert licence_text == (REPOSITORY / "LICENSE").read_text(encoding="utf-8")
    assert licence_text.lstrip().startswith("EUROPEAN UNION PUBLIC LICENCE v. 1.2")


def test_the_container_build_has_the_files_pyproject_names() -> None:
    """The Dockerfile builds from a few copied files; a license file left out would be missing
    from the image's package (setuptools only warns)."""
    import tomllib

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    copied = set()
    for line in (REPOSITORY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(line.split()[1:-1])
    assert {project["readme"], *project["license-files"], "pyproject.toml"} <= copied
