"""dvc.yaml lists, for every stage, exactly the project code the stage imports, so DVC reruns a stage
when (and only when) code it runs has changed: a file of infogan/data, model, evaluation or training
as its layer's folder, except the evaluation files train borrows, which it names one by one so that
the rest of evaluation (render's own) never retrains. And render's code imports no Lightning."""

from __future__ import annotations

import re
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


LAYERS = ("data", "model", "evaluation", "training")
BORROWED = {"train": "evaluation"}  # a layer a stage names file by file


def as_deps(stage: str, files: set[str]) -> set[str]:
    """The deps that cover `files`: a layer's files as its folder, other files as themselves."""
    deps = set()
    for file in files:
        parts = Path(file).parts
        layer = parts[1] if parts[0] == "infogan" and len(parts) > 2 else None
        deps.add(f"infogan/{layer}" if layer in LAYERS and BORROWED.get(stage) != layer else file)
    return deps


def code_deps(stage: str) -> list[str]:
    definition = STAGES[stage]
    deps = definition.get("do", definition)["deps"]  # a foreach stage's are under `do`
    return [dep for dep in deps if dep.startswith(("infogan", "pipeline"))]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_deps_are_the_code_it_imports(stage):
    """Stage <name> runs `python -m pipeline.<name>`."""
    deps = code_deps(stage)
    assert len(deps) == len(set(deps))
    assert set(deps) == as_deps(stage, imported_project_files(stage))


def test_training_and_render_stand_on_their_own_layers():
    assert {"infogan/data", "infogan/model", "infogan/training"} <= set(code_deps("train"))
    assert "infogan/evaluation" not in code_deps("train")  # a change to render's metrics never retrains
    assert {"infogan/data", "infogan/model", "infogan/evaluation"} <= set(code_deps("render"))
    assert not any(dep.startswith("infogan/training") for dep in code_deps("render"))


def test_render_imports_no_lightning():
    """Neither does any file render's deps name, folders expanded: render needs the networks, not their training."""
    code = "import sys, pipeline.render; print(sorted(m for m in sys.modules if 'lightning' in m))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    files = [
        path
        for dep in code_deps("render")
        for path in (sorted((ROOT / dep).glob("*.py")) if (ROOT / dep).is_dir() else [ROOT / dep])
    ]
    assert len(files) > 20
    importing = [
        str(f.relative_to(ROOT))
        for f in files
        if re.search(r"^\s*(from|import) (pytorch_)?lightning", f.read_text(), re.M)
    ]
    assert importing == []
