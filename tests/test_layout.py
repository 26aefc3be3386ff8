"""The README's layout section names every folder of the tree, and only folders that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layout_folders() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1]
    block = section.split("```", 2)[1]
    return {m.group(1).rstrip("/") for m in re.finditer(r"^(\S+/)\s", block, re.MULTILINE)}


def tree_folders() -> set[str]:
    """Top-level folders git tracks, with the packages of `liftgate/` one level down."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    parts = [Path(f).parts for f in tracked if len(Path(f).parts) > 1]
    top = {p[0] for p in parts if not p[0].startswith(".")} - {"liftgate"}
    liftgate = {f"liftgate/{p[1]}" for p in parts if p[0] == "liftgate" and len(p) > 2}
    return top | liftgate


def test_readme_layout_matches_the_tree() -> None:
    assert layout_folders() == tree_folders()
