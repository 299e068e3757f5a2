"""dvc.yaml lists, for every stage, exactly the project code the stage imports, so DVC reruns a stage
when (and only when) code it runs has changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def imported_project_files(stage: str) -> set[str]:
    """The infogan/ and pipeline/ files that `import pipeline.<stage>` loads, in a fresh interpreter."""
    code = (
        f"import sys, pipeline.{stage}\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] in ('infogan', 'pipeline') and getattr(module, '__file__', None):\n"
        "        print(module.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {str(Path(line).resolve().relative_to(ROOT)) for line in out.split()}


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_is_checked():
    assert list(STAGES) == ["check_params", "verify", "prepare", "train", "render"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_are_the_code_it_imports(stage):
    """Stage <name> runs `python -m pipeline.<name>`."""
    definition = STAGES[stage]
    deps = definition.get("do", definition)["deps"]  # a foreach stage's are under `do`
    code_deps = {dep for dep in deps if dep.startswith(("infogan", "pipeline"))}
    assert code_deps == imported_project_files(stage)
