"""The HTML report and the leaderboard site in a real headless Chromium: no console errors, every
figure rendered with a non-zero size, no network request, the leaderboard sorted by a header
click; screenshots kept under the test's tmp dir (and tests/artifacts/, ignored by git)."""

import shutil
from pathlib import Path

import pytest

import neurobench as nb
from neurobench.cli import main

from .browser import Page, browser_or_skip
from .stores import make_store

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _keep(shot: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)


@pytest.fixture
def browser():
    pw, browser = browser_or_skip()
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "r.sqlite")


def _no_network(html: str) -> None:
    for marker in ("http://", "https://", "//cdn", "<link ", "src=\"http"):
        assert marker not in html, marker


def test_report_is_self_contained_and_renders_every_figure(store, tmp_path, browser):
    written = nb.report(tmp_path / "report.html", store, rdms=False)
    html = written.path.read_text()
    _no_network(html)
    assert "tiny &lt;b&gt;net&lt;/b&gt;" in html and "<b>net</b>" not in html  # user strings escaped
    # 3 + 1 + 1 + 1 + 1 layer profiles (every result), 1 time course, 1 trajectory (3 checkpoints)
    assert written.n_figures == 9
    assert "[0.4000, 0.6000]" in html  # both ceiling bounds
    assert "peak" in html or "time course" in html
    page = Page(browser, written.path.as_uri())
    sizes = page.image_sizes()
    assert len(sizes) == written.n_figures
    assert all(nw > 0 and nh > 0 and w > 0 and h > 0 for nw, nh, w, h in sizes), sizes
    page.page.click("text=provenance of these numbers >> nth=0")
    assert page.page.is_visible("text=weights sha256 >> nth=0")
    shot = tmp_path / "report.png"
    page.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.errors == []
    _keep(shot)


def test_leaderboard_site_sorts_on_header_click(store, tmp_path, browser, capsys):
    assert main(["leaderboard", "--store", str(store.path), "--html", str(tmp_path / "site")]) == 0
    index = Path(capsys.readouterr().out.strip())
    assert index == tmp_path / "site" / "index.html"
    _no_network(index.read_text())
    page = Page(browser, index.as_uri())

    def column(name):
        headers = page.page.eval_on_selector_all("#leaderboard th", "hs => hs.map(h => h.textContent)")
        i = headers.index(name)
        return page.page.eval_on_selector_all(
            "#leaderboard tbody tr", f"rows => rows.map(r => r.cells[{i}].getAttribute('data-value') ?? "
                                     f"r.cells[{i}].textContent)")

    agg = [float(v) if v else None for v in column("aggregate")]
    assert agg == sorted(agg, key=lambda v: -v)  # the page opens ranked by the aggregate
    page.page.click("#leaderboard th:text-is('toy.hit-rsa')")
    first = [float(v) if v else float("inf") for v in column("toy.hit-rsa")]
    assert first == sorted(first, reverse=True) or first == sorted(first)
    page.page.click("#leaderboard th:text-is('toy.hit-rsa')")
    second = [float(v) if v else float("inf") for v in column("toy.hit-rsa")]
    assert second != first and sorted(second) == sorted(first)
    cells = page.page.eval_on_selector_all(
        "#leaderboard tbody tr", "rows => rows.map(r => [r.cells[4].textContent, r.cells[6].getAttribute('data-value')])")
    # each row's cell is its own result: the three checkpoints of alexnet differ (0.25/0.15/0.30 raw)
    assert len({v for _, v in cells}) == 5
    page.page.click("#leaderboard th:text-is('model')")
    models = column("model")
    assert models == sorted(models, key=str.lower) or models == sorted(models, key=str.lower, reverse=True)
    shot = tmp_path / "leaderboard.png"
    page.page.screenshot(path=str(shot), full_page=True)
    _keep(shot)
    # every model links to its report, which loads and renders too
    links = page.page.eval_on_selector_all("#leaderboard a", "as => as.map(a => a.href)")
    assert len(links) == 5 and all(link.startswith("file://") for link in links)
    report = Page(browser, links[0])
    assert all(w > 0 and h > 0 for _, _, w, h in report.image_sizes())
    assert page.errors == [] and report.errors == []


def test_report_cli_prints_its_path(store, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--store", str(store.path), "--model", "alexnet", "--benchmark", "toy.meg",
                 "--no-rdms", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and "figures" in captured.err
    text = out.read_text()
    assert "toy.meg-rsa" in text and "toy.hit-rsa" not in text and "tiny" not in text


def test_report_of_an_unknown_model_is_a_clear_error(store, tmp_path, capsys):
    assert main(["report", "--store", str(store.path), "--model", "nope", "--out", str(tmp_path / "r.html")]) == 2
    assert "no results of ['nope']" in capsys.readouterr().err


def test_report_draws_per_voxel_maps_where_targets_have_voxel_coordinates(tmp_path, browser):
    import numpy as np
    import pandas as pd

    from neurobench.store import ResultStore

    from .stores import result

    res = result(bench="toy.v1-encoding")
    ijk = np.array([(i, j, k) for i in range(2, 6) for j in range(2, 6) for k in range(2, 6)])
    frames = []
    for layer in res.layers["layer"]:
        frames.append(pd.DataFrame({"layer": layer, "subject": "subj01", "i": ijk[:, 0], "j": ijk[:, 1],
                                    "k": ijk[:, 2], "r": np.linspace(-0.2, 0.6, len(ijk)),
                                    "normalized": np.linspace(0, 1, len(ijk))}))
    res.targets = pd.concat(frames, ignore_index=True)
    res.target_space = {"subj01": {"columns": ["i", "j", "k"], "shape": [8, 8, 8],
                                   "affine": (np.eye(4) * [8, 8, 8, 1]).tolist()}}
    store = ResultStore(tmp_path / "r.sqlite")
    store.add(res)
    store.add(result(bench="toy.hit-rsa"))
    written = nb.report(tmp_path / "report.html", store, rdms=False)
    html = written.path.read_text()
    assert written.n_figures == 3 and html.count("data:image/png;base64,") == 1  # 2 profiles + 1 glass brain
    assert "per-voxel r of layer fc" in html
    assert "per-voxel maps not drawn: the benchmark&#x27;s targets have no voxel coordinates" not in html
    page = Page(browser, written.path.as_uri())
    assert all(w > 0 and h > 0 for _, _, w, h in page.image_sizes()) and page.errors == []
