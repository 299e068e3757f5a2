"""DVC experiments on a tiny-config copy of the project: `dvc exp run -S`, `dvc exp show`, `dvc params
diff`, `dvc metrics diff`, and queued experiments (`dvc exp run --queue`, `dvc queue start`). Seeds are
swept with pipeline.sweep instead (docs/operations.md, "Seed sweeps", says why).

One `dvc repro` makes the baseline commit that every test starts from. MNIST is placed by hand in
data/raw/mnist with no mirror to download from. A queued experiment runs in a temporary clone under
.dvc/tmp/exps, which lacks git-ignored data/raw: `--copy-paths data/raw` brings the files along (as it
would a hand-placed CelebA, which cannot be downloaded at all).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.pipeline.project_copy import GIT_IDENTITY, attempt, dvc, dvc_command, dvc_env, git, tiny_mnist_project

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

METRICS = "reports/mnist/metrics.json"
QUEUE_TIMEOUT_S = 600
# present whatever the tiny training learned (the factor/* correlations are left out when undefined)
ALWAYS_MEASURED = {"eval/categorical_accuracy", "info_bound/categorical_0", "final/loss/d", "final/loss/g"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_params, mnist_fixture_dir):
    """A tiny-config copy whose HEAD is the baseline: the pipeline's outputs after one `dvc repro`
    (the trained model in DVC's cache, metrics and GIFs in git). Returns (folder, env)."""
    root = tmp_path_factory.mktemp("experiments")
    dst = root / "project"
    dst.mkdir()
    tiny_mnist_project(dst, tiny_params, mnist_fixture_dir, tracking=root / "tracking")
    # one torch thread: quicker beside other work on a small CPU, and a fixed thread count keeps runs comparable
    env = dvc_env(OMP_NUM_THREADS="1", **GIT_IDENTITY)
    dvc(dst, env, "repro")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "baseline")
    return dst, env


def experiments(dst: Path, env: dict) -> dict[str, dict]:
    """`dvc exp show --json`, as {name: {"rev", "params" (params.yaml), "metrics" (metrics.json)}}
    for the baseline commit (named by its branch) and each of its experiments."""
    shown = json.loads(dvc(dst, env, "exp", "show", "--json"))
    found = {}

    def add(entry: dict, name: str) -> None:
        data = entry["data"]
        found[name] = {
            "rev": entry["rev"],
            "params": data["params"]["params.yaml"]["data"],
            "metrics": data["metrics"].get(METRICS, {}).get("data", {}),
        }

    for commit in shown:
        if commit["rev"] == "workspace":
            continue
        add(commit, commit["name"])
        for experiment in commit.get("experiments") or []:
            add(experiment["revs"][0], experiment["name"])
    return found


def committed_metrics(dst: Path, rev: str) -> dict:
    """The metrics.json that commit `rev` (the baseline's, or an experiment's) holds."""
    return json.loads(git(dst, "show", f"{rev}:{METRICS}"))


def baseline_name(dst: Path) -> str:
    return git(dst, "rev-parse", "--abbrev-ref", "HEAD").strip()


@pytest.fixture(scope="module")
def lambda_cat_experiment(project) -> tuple[str, str]:
    """`dvc exp run -S train.lambda_cat=2` in the workspace; (experiment name, its output)."""
    dst, env = project
    return "cat-2", dvc(dst, env, "exp", "run", "-S", "train.lambda_cat=2", "--name", "cat-2")


def test_exp_run_with_a_changed_param_is_listed_with_its_metrics(project, lambda_cat_experiment):
    dst, env = project
    name, output = lambda_cat_experiment
    # a training param: train and render rerun, the data stages do not
    assert "Running stage 'train@mnist'" in output and "Running stage 'render@mnist'" in output
    assert "Stage 'prepare@mnist' didn't change, skipping" in output
    shown = experiments(dst, env)
    baseline, experiment = shown[baseline_name(dst)], shown[name]
    assert baseline["params"]["train"]["lambda_cat"] == 1.0
    assert experiment["params"] == {**baseline["params"], "train": {**baseline["params"]["train"], "lambda_cat": 2}}
    # the columns are render's metrics.json, as each commit holds it
    assert set(experiment["metrics"]) >= ALWAYS_MEASURED
    assert experiment["metrics"] == committed_metrics(dst, experiment["rev"])
    assert baseline["metrics"] == committed_metrics(dst, baseline["rev"])
    assert experiment["metrics"]["final/loss/d"] != baseline["metrics"]["final/loss/d"]


def test_params_and_metrics_diff_show_the_experiment(project, lambda_cat_experiment):
    dst, env = project
    name, _ = lambda_cat_experiment
    expected_params = {"params.yaml": {"train.lambda_cat": {"old": 1.0, "new": 2, "diff": 1.0}}}
    assert json.loads(dvc(dst, env, "params", "diff", "HEAD", name, "--json")) == expected_params
    old, new = committed_metrics(dst, "HEAD"), committed_metrics(dst, experiments(dst, env)[name]["rev"])
    # `dvc exp apply` puts the experiment in the workspace; the plain diffs compare it with HEAD
    dvc(dst, env, "exp", "apply", name)
    assert json.loads((dst / METRICS).read_text()) == new
    assert json.loads(dvc(dst, env, "params", "diff", "--json")) == expected_params
    changed = json.loads(dvc(dst, env, "metrics", "diff", "--json"))[METRICS]
    assert "final/loss/d" in changed and set(changed) <= set(old) | set(new)
    for key, values in changed.items():
        assert values["old"] == old.get(key) and values["new"] == new.get(key), key
    assert changed == json.loads(dvc(dst, env, "metrics", "diff", "HEAD", name, "--json"))[METRICS]


def queue_states(dst: Path, env: dict, names: list[str]) -> dict[str, str]:
    """{experiment name: Queued | Running | Success | Failed} from `dvc queue status`."""
    rows = [line.split() for line in dvc(dst, env, "queue", "status").splitlines()]
    return {row[1]: row[-1] for row in rows if len(row) >= 3 and row[1] in names}


def queue_processes(dst: Path) -> list[int]:
    """The process ids DVC recorded for its queue: the workers and the experiment runs they started."""
    exps = dst / ".dvc/tmp/exps"
    pids = []
    for record in [*exps.glob("celery/dvc-exp-worker-*.json"), *exps.glob("run/*/*.json")]:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # being written, or no process
            pids.append(json.loads(record.read_text())["pid"])
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_queue(dst: Path, env: dict) -> list[int]:
    """`dvc queue stop --kill`, then wait for every queue process to end; kill (by process group) any
    that has not after a minute and return those, so a failing test leaves nothing running."""
    attempt(dvc_command("queue", "stop", "--kill"), dst, env, timeout=120)
    deadline = time.monotonic() + 60
    while any(map(alive, queue_processes(dst))) and time.monotonic() < deadline:
        time.sleep(0.5)
    stuck = [pid for pid in queue_processes(dst) if alive(pid)]
    for pid in stuck:
        with contextlib.suppress(ProcessLookupError):  # with what it started, in its process group
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    return stuck


def test_queued_experiments_run_with_dvc_queue_start(project):
    dst, env = project
    # start from the baseline whatever ran before: a queued experiment takes the workspace as it is
    git(dst, "reset", "-q", "--hard", "HEAD")
    dvc(dst, env, "checkout", "--force")
    weights = {f"cont-{weight}": weight for weight in (0.2, 0.3)}
    for name, weight in weights.items():
        override = f"train.lambda_cont={weight}"
        queued = dvc(dst, env, "exp", "run", "--queue", "-S", override, "-C", "data/raw", "--name", name)
        assert f"Queued experiment '{name}' for future execution." in queued
    assert set(queue_states(dst, env, list(weights)).values()) == {"Queued"}
    try:
        # The worker `dvc queue start` spawns keeps its standard streams: into a pipe, reading this
        # command's output would last as long as the worker; into a file it returns at once.
        with (dst.parent / "queue-start.log").open("w+") as log:
            started = subprocess.run(
                dvc_command("queue", "start"),
                cwd=dst,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
            log.seek(0)
            assert started.returncode == 0 and "Started '1' new experiments task queue worker" in log.read()
        deadline = time.monotonic() + QUEUE_TIMEOUT_S
        while set((states := queue_states(dst, env, list(weights))).values()) - {"Success", "Failed"}:
            assert time.monotonic() < deadline, f"the queue did not finish in {QUEUE_TIMEOUT_S} s: {states}"
            time.sleep(3)
        for name, state in states.items():
            assert state == "Success", f"{name}: {state}\n{dvc(dst, env, 'queue', 'logs', name)[-4000:]}"

        shown = experiments(dst, env)
        for name, weight in weights.items():
            assert shown[name]["params"]["train"]["lambda_cont"] == weight
            assert set(shown[name]["metrics"]) >= ALWAYS_MEASURED
            assert shown[name]["metrics"] == committed_metrics(dst, shown[name]["rev"])
        assert (
            shown["cont-0.2"]["metrics"]["final/info/continuous"]
            != shown["cont-0.3"]["metrics"]["final/info/continuous"]
        )
        # the temporary clones logged into the project's MLflow store: its params.yaml names it by path
        client = MlflowClient(yaml.safe_load((dst / "params.yaml").read_text())["tracking"]["uri"])
        runs = client.search_runs([client.get_experiment_by_name("infogan-mnist").experiment_id])
        by_weight = {r.data.params["train.lambda_cont"]: r for r in runs}
        assert {"0.2", "0.3"} <= set(by_weight) and all(by_weight[w].info.status == "FINISHED" for w in ("0.2", "0.3"))
    finally:
        stuck = stop_queue(dst, env)
    assert not stuck, f"queue processes {stuck} outlived `dvc queue stop` and were killed"
    assert "Worker status: 0 active, 0 idle" in dvc(dst, env, "queue", "status")
