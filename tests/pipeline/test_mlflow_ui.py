"""The MLflow UI in a real browser: two tiny trainings with different `train.lr_g`, each rendered, served
by `mlflow server` and read in headless Chromium through Playwright, as a user would: the runs table,
the compare view, a run's artifacts and the generator's registered model.

    .venv/bin/python -m pytest tests/pipeline/test_mlflow_ui.py

Needs Debian's chromium at /usr/bin/chromium (or INFOGAN_CHROMIUM) and the playwright package. Screenshots
of each page go to $INFOGAN_TEST_ARTIFACTS/mlflow-ui/ when that is set (CI keeps them), else under tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.pipeline.project_copy import free_port, run, stop_group

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # reported by the `browser` fixture, so that the rest of the suite still runs
    sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("INFOGAN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
    # nothing leaves the machine: no updates, sync, metrics or pings, and no name but the server resolves
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-pings",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1400, "height": 900}
UI_TIMEOUT_MS = 90_000  # the React app loads its chunks slowly on a busy 2-core machine
SERVER_START_S = 180
LR_G = ("0.001", "0.0005")  # the one param the two trainings differ in, as MLflow records it
EXPERIMENT = "infogan-mnist"
MODEL = "infogan-mnist-generator"  # what each training registers (pipeline/registry.py)
RUN_NAME = re.compile(r"mnist-improved-seed0-\d{8}-\d{6}")  # what was trained, and when it started (UTC)


@dataclass
class Training:
    run_id: str
    name: str  # the MLflow run's name
    lr_g: str
    metrics: dict[str, float]  # the metrics.json render wrote
    media: Path  # the GIFs and sheets render wrote


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A folder holding the SQLite store (mlflow.db) and artifact root (mlartifacts/) both trainings use."""
    return tmp_path_factory.mktemp("mlflow-ui")


@pytest.fixture(scope="module")
def trainings(store, tiny_params, train_args, prepared_mnist, stage_env) -> list[Training]:
    """The real train and render stages, once for each `train.lr_g`, into one store."""
    done = []
    for index, lr_g in enumerate(LR_G):
        folder = store / f"lr-{index}"
        params_file = tiny_params(folder, lr_g=float(lr_g))
        params = yaml.safe_load(params_file.read_text())
        params["train"].update(max_epochs=2, sample_every_n_epochs=1)  # 20 iterations
        params["tracking"].update(uri=f"sqlite:///{store / 'mlflow.db'}", artifact_root=str(store / "mlartifacts"))
        params["render"].update(continuous_frames=5, mi_samples=200, factor_samples=20)
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        run([sys.executable, "-m", "pipeline.train", *train_args(folder, params_file, prepared_mnist)], ROOT, stage_env)
        render_args = ["--dataset", "mnist", "--params", str(params_file), "--model", str(folder / "model")]
        render_args += ["--data", str(prepared_mnist), "--media", str(folder / "media")]
        render_args += ["--metrics", str(folder / "metrics.json"), "--history", str(folder / "history.csv")]
        run([sys.executable, "-m", "pipeline.render", *render_args], ROOT, stage_env)
        run_id = json.loads((folder / "model" / "run.json").read_text())["run_id"]
        name = MlflowClient(params["tracking"]["uri"]).get_run(run_id).info.run_name
        metrics = json.loads((folder / "metrics.json").read_text())
        done.append(Training(run_id, name, lr_g, metrics, folder / "media"))
    return done


def server_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("INFOGAN_TEST_ARTIFACTS")
    if not folder:
        return tmp_path_factory.mktemp("screenshots")
    (Path(folder) / "mlflow-ui").mkdir(parents=True, exist_ok=True)
    return Path(folder) / "mlflow-ui"


@pytest.fixture(scope="module")
def server(store, trainings, stage_env, screenshots):
    """`mlflow server` on the trainings' store; yields (base URL, experiment id) and stops it after.

    The pipeline creates its experiment with a file:// artifact location under tracking.artifact_root,
    so the server lists and sends those artifacts straight from disk. --artifacts-destination only
    serves experiments made through the server (mlflow-artifacts:/); it points into the store folder so
    that the server makes no ./mlartifacts wherever it runs."""
    url = f"http://127.0.0.1:{free_port()}"
    log = screenshots / "mlflow-server.log"
    command = [Path(sys.executable).with_name("mlflow"), "server", "--host", "127.0.0.1", "--port", url.split(":")[-1]]
    command += [
        "--backend-store-uri",
        f"sqlite:///{store}/mlflow.db",
        "--artifacts-destination",
        str(store / "mlartifacts"),
    ]
    command += ["--workers", "1"]
    # no job runner: its seven worker processes serve GenAI features the UI pages here do not use
    env = {**stage_env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as output:  # in its own process group, so that it is stopped with everything it starts
        process = subprocess.Popen(
            command, cwd=store, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not server_answers(url):
            assert process.poll() is None, f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"mlflow server did not answer in {SERVER_START_S} s:\n{log.read_text()}"
            )
            time.sleep(0.5)
        experiment = MlflowClient(f"sqlite:///{store}/mlflow.db").get_experiment_by_name(EXPERIMENT)
        yield url, experiment.experiment_id
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (a context: the pages share the UI's stored settings)."""
    if sync_playwright is None:
        pytest.fail(
            "the playwright package is missing: .venv/bin/pip install -e '.[test]' (it pins playwright)",
            pytrace=False,
        )
    if not CHROMIUM.is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: sudo apt-get install -y --no-install-recommends chromium "
            "(Playwright's own browser download is not used), or set INFOGAN_CHROMIUM to a Chromium binary",
            pytrace=False,
        )
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(viewport=VIEWPORT)
            context.set_default_timeout(UI_TIMEOUT_MS)
            # MLflow's assistant panel opens itself on a first visit and would cover a third of each screenshot
            context.add_init_script(
                "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
                "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
            )
            yield context
        finally:
            chromium.close()


@pytest.fixture
def page(browser, screenshots, request):
    """A fresh tab; when the test fails, a screenshot of where it stood is saved as <test>-failed.png."""
    tab = browser.new_page()
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:  # the call phase has been reported by now
        tab.screenshot(path=screenshots / f"{request.node.name}-failed.png")
    tab.close()


def open_runs_table(page: Page, url: str, experiment_id: str, trainings: list[Training]) -> None:
    page.goto(f"{url}/#/experiments/{experiment_id}/runs")
    # MLflow 3.17 opens every experiment in its GenAI view, whatever its mlflow.experimentKind tag: the
    # sidebar's switch picks the training view (a no-op when the browser has it picked already)
    page.get_by_role("button", name="Model training").click()
    for training in trainings:  # the table's rows carry the run id
        expect(page.locator(f'[row-id="{training.run_id}"]').first).to_be_visible()


def shown(page: Page, run_id: str, column: str) -> str:
    """The text of one run's cell in the runs table; columns are named as in MLflow's search syntax
    (params.`train.lr_g`)."""
    cell = page.locator(f'[row-id="{run_id}"] [role="gridcell"][col-id="{column}"]')
    expect(cell).to_be_visible()
    return cell.inner_text()


def test_the_runs_table_lists_both_trainings_with_their_params_and_metrics(page, server, store, trainings, screenshots):
    url, experiment_id = server
    open_runs_table(page, url, experiment_id, trainings)
    listed = {row.get_attribute("row-id") for row in page.locator("[row-id]").all()}
    assert listed == {t.run_id for t in trainings}

    page.get_by_role("button", name="Columns").click()
    chooser = page.get_by_role("dialog").filter(has=page.get_by_placeholder("Search columns"))
    for column in ("Dataset", "Source", "Models"):  # empty for these runs: make room
        chooser.get_by_text(column, exact=True).click()
    for column in ("train.lr_g", "eval/categorical_accuracy", "final/loss/g"):
        chooser.get_by_placeholder("Search columns").fill(column)
        chooser.get_by_text(column, exact=True).click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("columnheader", name="final/loss/g").first).to_be_visible()
    page.screenshot(path=screenshots / "experiment-runs.png")

    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    names = [t.name for t in trainings]
    assert all(RUN_NAME.fullmatch(name) for name in names) and len(set(names)) == 2, names  # one seed, two runs
    for training in trainings:
        name = page.locator(f'[row-id="{training.run_id}"] [col-id="attributes.`Run Name`"]').get_by_role("link")
        expect(name).to_have_text(training.name)
        assert shown(page, training.run_id, "params.`train.lr_g`") == training.lr_g
        # a metric only render logs, unrounded
        loss_g = float(shown(page, training.run_id, "metrics.`final/loss/g`"))
        assert loss_g == pytest.approx(training.metrics["final/loss/g"], rel=1e-9)
        # the table shows a metric's latest value: for one that training logged every epoch, render's (logged
        # after it, at the training's last iteration), the number render reported
        accuracy = float(shown(page, training.run_id, "metrics.`eval/categorical_accuracy`"))
        assert accuracy == pytest.approx(training.metrics["eval/categorical_accuracy"], rel=1e-9)
        last_step = max(m.step for m in client.get_metric_history(training.run_id, "loss/d"))
        evaluations = client.get_metric_history(training.run_id, "eval/categorical_accuracy")
        assert max(evaluations, key=lambda m: (m.step, m.timestamp)).step == last_step


def test_the_compare_view_shows_both_runs_and_the_param_they_differ_in(page, server, trainings, screenshots):
    url, experiment_id = server
    open_runs_table(page, url, experiment_id, trainings)
    for training in trainings:
        page.locator(f'[row-id="{training.run_id}"]').get_by_role("checkbox").first.check()
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url("**/compare-runs?**")
    expect(page.get_by_text("Comparing 2 Runs from 1 Experiment")).to_be_visible()

    page.get_by_text("Visualizations", exact=True).click()  # folded: the tables fit the screenshot
    page.get_by_role("switch", name="Parameters - Show diff only").click()
    params = page.get_by_role("table").filter(has=page.get_by_text("train.lr_g", exact=True))
    expect(params.get_by_role("row").filter(has_text="train.batch_size")).to_have_count(0)  # the same in both
    # columns follow the Run ID row, each headed by its run's name; the one param that differs is lr_g,
    # logged once (as train.lr_g, not also as optim/lr_g)
    ids = page.get_by_role("row").filter(has_text="Run ID:").inner_text().split("\t")[1:]
    assert sorted(ids) == sorted(t.run_id for t in trainings)
    names = [cell.strip() for cell in page.get_by_role("row").filter(has_text="Run Name:").inner_text().split("\t")[1:]]
    assert names == [next(t.name for t in trainings if t.run_id == run_id) for run_id in ids]
    differing = [row.split("\t") for row in params.get_by_role("row").all_inner_texts()]
    lr_by_run = {t.run_id: t.lr_g for t in trainings}
    assert differing == [["train.lr_g", *(lr_by_run[run_id] for run_id in ids)]]
    expect(page.get_by_role("link", name="eval/categorical_accuracy", exact=True)).to_be_visible()  # metrics grid
    page.screenshot(path=screenshots / "compare.png")


def test_a_runs_artifacts_tab_lists_its_gifs_and_metrics(page, server, trainings, screenshots):
    url, experiment_id = server
    training = trainings[0]
    page.goto(f"{url}/#/experiments/{experiment_id}/runs/{training.run_id}")
    page.get_by_role("tab", name="Artifacts").click()
    nodes = page.get_by_test_id("artifact-tree-node")
    expect(nodes.filter(has_text="metrics.json")).to_have_count(1)
    nodes.get_by_text("media", exact=True).click()
    gifs = sorted(path.name for path in training.media.glob("*.gif"))
    assert "categorical_0.gif" in gifs
    for gif in gifs:
        expect(nodes.get_by_text(gif, exact=True)).to_be_visible()
    listed = {name for name in nodes.all_inner_texts() if name.endswith(".gif")}
    assert listed == set(gifs)

    # the preview is the GIF itself, sent by the server from the artifact root
    nodes.get_by_text("categorical_0.gif", exact=True).click()
    preview = page.get_by_role("img", name="media/categorical_0.gif").first
    expect(preview).to_be_visible()
    page.wait_for_function("image => image.complete && image.naturalWidth > 0", arg=preview.element_handle())
    width = preview.evaluate("image => image.naturalWidth")
    assert width == Image.open(training.media / "categorical_0.gif").width
    page.screenshot(path=screenshots / "artifacts.png")


def test_the_model_registry_lists_a_version_per_training(page, server, trainings, screenshots):
    """Each training registered its generator: the registered model's page lists one version per
    training, and a version's page names the run that logged it and the model's signature."""
    url, _ = server
    page.goto(f"{url}/#/models/{MODEL}")
    expect(page.get_by_role("heading", name=MODEL).first).to_be_visible()
    for version in range(1, len(trainings) + 1):
        expect(page.get_by_role("link", name=f"Version {version}", exact=True)).to_be_visible()
    page.screenshot(path=screenshots / "registered-model.png")

    page.get_by_role("link", name="Version 1", exact=True).click()
    page.wait_for_url(f"**/models/{MODEL}/versions/1")
    expect(page.get_by_role("link", name=trainings[0].name).first).to_be_visible()  # the source run
    expect(page.get_by_text("Schema").first).to_be_visible()
    page.screenshot(path=screenshots / "model-version.png")
