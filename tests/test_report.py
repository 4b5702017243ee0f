"""The risk-team report: structure, numbers against summary.json, escaping, offline-ness,
errors that name the file, and a real render in headless Chromium.

Inputs come from the real pipeline (synthetic snapshot -> simulate -> results directory).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.cli import main
from simulator.errors import ResultsError
from simulator.report import (
    SECTIONS,
    _cascade_columns,
    _exceedance,
    _lower_quantile,
    _usd,
    _usd_short,
    build_report,
    make_report,
    read_results,
    render_html,
    render_json,
    shorten_address,
)
from simulator.results import save_results
from simulator.simulation import simulate
from simulator.synthetic import synthetic_snapshot, uniform_shock_paths

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def make_results(root: Path) -> dict[str, Path]:
    """Three results dirs from the real pipeline on one synthetic book (1,000 accounts, half
    of them near HF 1 so that some Monte Carlo paths end with bad debt): the default Monte
    Carlo scenario, the Black Thursday stress (one path), and a calm +/-3% shock (none)."""
    snapshot = synthetic_snapshot(n_accounts=1000, seed=3, near_one_share=0.5)
    symbols = snapshot.book().symbols
    runs = {
        "mc": simulate(snapshot, "default", n_paths=400, seed=1),
        "stress": simulate(snapshot, "black-thursday-2020", seed=1),
        "calm": simulate(
            snapshot, uniform_shock_paths(symbols, np.linspace(0.97, 1.03, 40), n_steps=6)
        ),
    }
    # A book where bad debt is rare: under 2.5% of paths, so VaR(97.5%) is 0 but ES is not.
    # (0.3 of accounts near HF 1 was rare under the all-or-nothing liquidator; with
    # profit-maximising sizing thin LINK / AAVE pools now spiral on most paths, see issue 16.)
    sturdy = synthetic_snapshot(n_accounts=400, seed=3, near_one_share=0.2)
    runs["rare"] = simulate(sturdy, "default", n_paths=400, seed=1)
    # A stress that moves none of the book's assets (like a CRV squeeze on a market without CRV).
    runs["still"] = simulate(snapshot, uniform_shock_paths(symbols, [1.0], n_steps=6))
    return {name: save_results(result, root / name) for name, result in runs.items()}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Results dirs from the real pipeline: Monte Carlo, a named stress, a calm scenario."""
    root = tmp_path_factory.mktemp("results")
    return make_results(root)


@pytest.fixture(scope="module")
def report_html(results: dict[str, Path]) -> str:
    return make_report(
        [results["mc"], results["stress"], results["calm"]], command="shortfall report …"
    )


# ---------------------------------------------------------------- numerics helpers


def test_lower_quantile_matches_numpy_inverted_cdf() -> None:
    rng = np.random.default_rng(3)
    x = np.where(rng.random(501) < 0.8, 0.0, rng.lognormal(3, 2, 501))
    w = np.full(len(x), 1 / len(x))
    for q in (0.01, 0.5, 0.8, 0.95, 0.975, 0.99, 1.0):
        assert _lower_quantile(x, q, w) == np.quantile(x, q, method="inverted_cdf")


def test_lower_quantile_weighted_against_exact_definition() -> None:
    x = np.array([5.0, 1.0, 3.0, 0.0])
    w = np.array([0.1, 0.4, 0.2, 0.3])  # cdf over sorted (0,1,3,5): 0.3, 0.7, 0.9, 1.0
    assert _lower_quantile(x, 0.3, w) == 0.0
    assert _lower_quantile(x, 0.31, w) == 1.0
    assert _lower_quantile(x, 0.9, w) == 3.0
    assert _lower_quantile(x, 0.95, w) == 5.0


def test_exceedance_is_tail_probability() -> None:
    x = np.array([0.0, 0.0, 2.0, 2.0, 5.0, 9.0])
    w = np.full(6, 1 / 6)
    e = _exceedance(x, w)
    assert e["loss_usd"] == [2.0, 5.0, 9.0]
    assert e["prob"] == pytest.approx([4 / 6, 2 / 6, 1 / 6])


def test_exceedance_keeps_every_decade_of_the_tail() -> None:
    x = np.arange(1.0, 10_001.0)  # P(L >= x) runs from 1 down to 1e-4
    e = _exceedance(x, np.full(len(x), 1e-4), points=200)
    assert len(e["loss_usd"]) <= 200
    assert e["loss_usd"][-1] == 10_000.0 and e["prob"][-1] == pytest.approx(1e-4)
    assert e["loss_usd"][0] == 1.0 and e["prob"][0] == pytest.approx(1.0)
    p = np.array(e["prob"])
    assert ((p >= 1e-4) & (p < 1e-3)).sum() == 9  # all the samples there are, 1e-4 .. 9e-4
    for low in (1e-3, 1e-2, 1e-1):
        assert ((p >= low) & (p < 10 * low)).sum() >= 20, low
    assert np.all(np.diff(p) < 0) and np.all(np.diff(e["loss_usd"]) > 0)


def test_shorten_address() -> None:
    a = "0x1234567890abcdef1234567890abcdef12345678"
    assert shorten_address(a) == "0x1234…5678"
    assert shorten_address("ETH") == "ETH"


# ---------------------------------------------------------------- structured report


def test_json_carries_the_numbers_of_summary_json(results: dict[str, Path]) -> None:
    dirs = [results["mc"], results["stress"]]
    data = json.loads(make_report(dirs, fmt="json"))
    assert [s["results_dir"] for s in data["scenarios"]] == [str(d) for d in dirs]
    for d, sc in zip(dirs, data["scenarios"], strict=True):
        summary = json.loads((d / "summary.json").read_text())
        assert sc["scenario"] == summary["scenario"]
        assert sc["seed"] == summary["seed"]
        assert sc["paths"] == summary["paths"]
        assert sc["alpha"] == summary["alpha"]
        assert sc["var_usd"] == summary["var_usd"]
        assert sc["es_usd"] == summary["es_usd"]
        assert sc["es_ci_usd"] == summary["es_ci_usd"]
        levels = {lv["alpha"]: lv for lv in sc["levels"]}
        assert set(levels) >= {0.95, 0.975, 0.99}
        assert levels[summary["alpha"]]["es_usd"] == summary["es_usd"]
        paths = pd.read_parquet(d / "paths.parquet")
        shortfall = paths["shortfall_usd"].to_numpy()
        dist = sc["distribution"]
        assert dist["n_paths"] == len(paths)
        assert dist["p_shortfall_positive"] == pytest.approx(np.mean(shortfall > 0))
        assert dist["max_usd"] == shortfall.max()
        assert sc["liquidated"]["max_usd"] == paths["liquidated_usd"].max()
        assert sc["snapshot"]["block_number"] == summary["snapshot"]["block_number"]
        assert sc["reproduce"]["seed"] == summary["seed"]
        if sc["top_accounts"] is not None:
            contrib = pd.read_parquet(d / "contributions.parquet")
            top = contrib.sort_values("es_contribution_usd", ascending=False).iloc[0]
            assert sc["top_accounts"]["rows"][0]["account"] == top["account"]
            assert sc["top_accounts"]["total_usd"] == pytest.approx(
                summary["es_usd"], rel=1e-6, abs=1e-6
            )


def test_json_is_strict_json(results: dict[str, Path]) -> None:
    text = make_report([results["mc"], results["calm"]], fmt="json")
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_calm_scenario_says_no_shortfall(results: dict[str, Path]) -> None:
    data = build_report([results["calm"]])
    dist = data["scenarios"][0]["distribution"]
    assert dist["p_shortfall_positive"] == 0.0
    page = render_html(data)
    assert "P(shortfall &gt; 0) = <b>0.00%</b>" in page
    assert "No path produced a shortfall" in page


def test_rare_shortfall_is_explained_and_drawn_without_warnings(
    results: dict[str, Path],
) -> None:
    summary = json.loads((results["rare"] / "summary.json").read_text())
    assert summary["var_usd"] == 0.0 < summary["es_usd"]  # the case this input exists for
    data = build_report([results["rare"]])
    dist = data["scenarios"][0]["distribution"]
    assert 0 < dist["p_shortfall_positive"] < 0.025
    page = render_html(data)  # warnings are errors: nothing is drawn at 0 on a log axis
    assert "VaR at 97.5% is $0 while ES" in page
    assert page.count("data:image/png;base64,") >= 2  # the distribution is still drawn


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1e9, allow_nan=False), st.floats(1e-6, 1.0, allow_nan=False)),
        min_size=1,
        max_size=40,
    ),
    st.floats(0.001, 0.999),
)
def test_lower_quantile_is_the_lower_quantile(pairs: list[tuple[float, float]], q: float) -> None:
    x = np.array([p[0] for p in pairs])
    w = np.array([p[1] for p in pairs])
    w = w / w.sum()
    v = _lower_quantile(x, q, w)
    assert w[x <= v].sum() >= q - 1e-9  # P(X <= v) >= q
    assert w[x < v].sum() < q + 1e-9  # and no smaller sample value qualifies


def test_round_limit_hits_are_reported(results: dict[str, Path]) -> None:
    for name in ("mc", "calm"):
        paths = pd.read_parquet(results[name] / "paths.parquet")
        cut = int((paths["rounds_limit_hits"] > 0).sum())
        page = make_report([results[name]])
        if cut:
            assert f"round limit was hit on {cut:,} of {len(paths):,} paths" in page
        else:
            assert "round limit was hit" not in page


def test_report_is_deterministic_but_for_the_timestamp(results: dict[str, Path]) -> None:
    import datetime as dt

    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    a = build_report([results["mc"]], generated_at=when)
    b = build_report([results["mc"]], generated_at=when)
    assert render_json(a) == render_json(b)


# ---------------------------------------------------------------- HTML


def test_every_section_is_present(report_html: str) -> None:
    for section in SECTIONS:
        assert f'<section id="{section}">' in report_html, section
    for heading in (
        "Snapshot",
        "Value at Risk and Expected Shortfall",
        "Shortfall distribution",
        "Scenarios side by side",
        "Liquidation cascades over time",
        "Contributions to ES",
        "Reproduce",
    ):
        assert f"<h2>{heading}" in report_html, heading
    assert report_html.count("data:image/png;base64,") >= 4  # distribution, scenarios, cascade x2


def test_html_needs_no_network(report_html: str) -> None:
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", report_html, re.I)
    assert not re.search(r"url\(\s*[\"']?\s*(https?:)?//", report_html, re.I)
    assert "@import" not in report_html
    assert "<script" not in report_html.lower()
    assert "<link" not in report_html.lower()
    assert "https://" not in report_html and "http://" not in report_html


def test_header_and_reproduce_carry_snapshot_and_parameters(
    results: dict[str, Path], report_html: str
) -> None:
    summary = json.loads((results["mc"] / "summary.json").read_text())
    snap = summary["snapshot"]
    assert f"{snap['block_number']:,}" in report_html
    assert snap["block_hash"] in report_html
    assert str(snap["protocol"]) in report_html
    assert "shortfall simulate" in report_html
    assert f"--seed {summary['seed']}" in report_html
    assert "shortfall report …" in report_html


def test_addresses_are_shortened_with_full_title(
    results: dict[str, Path], report_html: str
) -> None:
    contrib = pd.read_parquet(results["mc"] / "contributions.parquet")
    top = str(contrib.sort_values("es_contribution_usd", ascending=False)["account"].iloc[0])
    assert f'title="{top}">{shorten_address(top)}</span>' in report_html


def test_text_from_results_is_escaped(results: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(results["stress"], bad)
    summary = json.loads((bad / "summary.json").read_text())
    summary["scenario"] = '<script>alert("x")</script>'
    (bad / "summary.json").write_text(json.dumps(summary))
    page = make_report([results["mc"], bad])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def _block(page: str, section: str, index: int) -> str:
    """The HTML of scenario ``index``'s folded block in ``section``."""
    start = page.index(f'<details id="{section}-{index}"')
    return page[start : page.index("</details>", start)]


def _png_size(img_tag: str) -> tuple[int, int]:
    import base64
    import struct

    data = base64.b64decode(img_tag.split("base64,", 1)[1].split('"', 1)[0])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_dust_amounts_are_not_shown_as_zero(results: dict[str, Path], tmp_path: Path) -> None:
    assert _usd(0.000856) == "<$0.01" and _usd(0.0) == "$0" and _usd(0.006) == "$0.01"
    assert _usd_short(0.000856) == "<$0.01" and _usd_short(2_865.0) == "$2.87k"
    assert _usd_short(0.001, exact=True) == "$0.001"  # an axis tick says where it is
    dust = tmp_path / "dust"
    shutil.copytree(results["stress"], dust)
    summary = json.loads((dust / "summary.json").read_text())
    summary.update(var_usd=0.000856, es_usd=0.000856, es_ci_usd=[0.000856, 0.000856])
    (dust / "summary.json").write_text(json.dumps(summary))
    paths = pd.read_parquet(dust / "paths.parquet")
    paths["shortfall_usd"] = 0.000856
    paths.to_parquet(dust / "paths.parquet")
    page = make_report([results["mc"], dust])
    rows = page[page.index('<table class="scenarios">') :]
    row = rows[rows.index("<tr><td>black-thursday-2020") :]
    row = row[: row.index("</tr>")]
    assert "100.00%" in row  # P(shortfall > 0): the dust counts ...
    assert row.count("&lt;$0.01") == 3 and "$0.00" not in row  # ... and is not shown as zero


def test_one_path_stress_is_shown_as_one_path(results: dict[str, Path]) -> None:
    data = build_report([results["mc"], results["stress"]])
    mc, stress = data["scenarios"]
    assert stress["paths"] == 1
    assert _cascade_columns(stress) == [("median", "the stress path")]
    distinct = {mc["cascade"][lb]["path"] for lb in ("median", "var", "worst")}
    assert len(_cascade_columns(mc)) == len(distinct) >= 2
    page = render_html(data)
    risk = _block(page, "risk", 1)
    assert "A deterministic stress: one path" in risk
    assert "<table" not in risk and "1 paths" not in page  # no table of identical levels
    cascade = _block(page, "cascade", 1)
    assert cascade.count("<tr><td>") == 1 and "the stress path" in cascade
    wide = _png_size(_block(page, "cascade", 0).split("<img", 1)[1])
    narrow = _png_size(cascade.split("<img", 1)[1])
    assert narrow[0] < 0.75 * wide[0]  # one column of panels, not three copies


def test_stress_that_moves_nothing_draws_no_empty_cascade(results: dict[str, Path]) -> None:
    data = build_report([results["mc"], results["still"]])
    still = data["scenarios"][1]
    assert still["worst_move"]["worst_symbol"] is None and not still["worst_move"]["any_falls"]
    page = render_html(data)
    assert "no listed asset falls" in page
    cascade = _block(page, "cascade", 1)
    assert "there is no cascade to draw" in cascade and "<img" not in cascade


def test_intervals_name_their_level(results: dict[str, Path]) -> None:
    summary = json.loads((results["mc"] / "summary.json").read_text())
    page = make_report([results["mc"]])
    level = f"{100 * summary['ci_level']:g}% CI"
    assert f'<th class="num">ES {level}</th>' in page
    assert f'<th class="num">VaR {level}</th>' in page
    assert f"{summary['n_boot']:,} resamples" in page


def test_reproduce_shows_hashes_and_versions(tmp_path: Path) -> None:
    """From `shortfall simulate` to the report: what pins the numbers is on the page."""
    synthetic_snapshot(n_accounts=200, seed=3).save(tmp_path / "snap")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "ftx-2022"]
    assert main([*argv, "--out", str(tmp_path / "res")]) == 0
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    page = make_report([tmp_path / "res"])
    block = page[page.index('<section id="reproduce">') :]
    assert f"<code>{summary['snapshot_sha256']}</code>" in block
    assert f"<code>{summary['scenario_sha256']}</code>" in block
    assert f"<code>{summary['scenario_file']}</code>" in block
    for name, version in summary["versions"].items():
        assert f"{name} {version}" in block
    assert "<td>versions</td>" not in block  # shown as versions, not dumped as JSON


# ---------------------------------------------------------------- errors


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=re.escape(str(tmp_path / "nope"))):
        read_results(tmp_path / "nope")


@pytest.mark.parametrize("name", ["summary.json", "paths.parquet"])
def test_missing_file_names_dir_and_file(
    results: dict[str, Path], tmp_path: Path, name: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(results["mc"], broken)
    (broken / name).unlink()
    with pytest.raises(ResultsError, match=re.escape(str(broken / name))):
        make_report([results["mc"], broken])


@pytest.mark.parametrize("name", ["summary.json", "paths.parquet", "contributions.parquet"])
def test_corrupt_file_names_dir_and_file(
    results: dict[str, Path], tmp_path: Path, name: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(results["mc"], broken)
    (broken / name).write_text("{ not what it should be")
    with pytest.raises(ResultsError, match=re.escape(str(broken / name))):
        read_results(broken)


# ---------------------------------------------------------------- CLI


def test_cli_writes_html_and_json(
    results: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(results["mc"]), str(results["stress"]), "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "shortfall report" in page and "--out" in page  # the command line is recorded
    jout = tmp_path / "report.json"
    assert main(["report", str(results["mc"]), "--format", "json", "--out", str(jout)]) == 0
    data = json.loads(jout.read_text())
    assert (
        data["scenarios"][0]["es_usd"]
        == json.loads((results["mc"] / "summary.json").read_text())["es_usd"]
    )
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["report.html"]  # no temp files left
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # shareable, not the temp file's 0600


def test_cli_user_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "missing") in err
    assert not (tmp_path / "x.html").exists()


# ---------------------------------------------------------------- real rendering


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed: run tools/test-setup.sh (make test does)"
    return exe


#: Appended to a copy of the page: once it has loaded, measure every section and figure and
#: write the measurements into the DOM, which ``--dump-dom`` prints. (The report itself has
#: no script; the screenshot is taken of the unmodified page.)
_PROBE = """<script>
addEventListener("load", () => {
  const out = {width: document.documentElement.clientWidth,
               height: document.documentElement.scrollHeight, sections: [], figures: []};
  for (const s of document.querySelectorAll("main section")) {
    const r = s.getBoundingClientRect();
    out.sections.push({id: s.id, top: r.top + scrollY, height: r.height,
                       heading: (s.querySelector("h2") || {}).textContent || ""});
  }
  for (const img of document.images) {
    const r = img.getBoundingClientRect();
    out.figures.push({alt: img.alt, shown: img.getClientRects().length > 0,
                      decoded: img.complete && img.naturalWidth > 0,
                      top: r.top + scrollY, left: r.left, width: r.width, height: r.height});
  }
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""

WINDOW_WIDTH = 1280


def _chromium_run(args: list[str], tmp: Path, name: str) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / ('chromium-' + name)}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _layout(html_file: Path, tmp: Path) -> dict[str, Any]:
    """Where Chromium lays out each section and figure of ``html_file``, CSS pixels."""
    probe = tmp / "probe.html"
    probe.write_text(
        html_file.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
        encoding="utf-8",
    )
    proc = _chromium_run(
        [f"--window-size={WINDOW_WIDTH},1000", "--dump-dom", probe.resolve().as_uri()], tmp, "dom"
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"chromium printed no layout (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


def _screenshot(html_file: Path, png: Path, tmp: Path, height: int = 4000) -> None:
    proc = _chromium_run(
        [
            f"--screenshot={png}",
            f"--window-size={WINDOW_WIDTH},{height}",
            html_file.resolve().as_uri(),
        ],
        tmp,
        "shot",
    )
    assert png.is_file(), (
        f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    )


def _pixels(png: Path) -> Any:
    from matplotlib.image import imread

    img = imread(png)
    assert img.ndim == 3 and img.shape[0] >= 1000 and img.shape[1] >= 1000, img.shape
    return np.asarray(img[..., :3])


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report_html: str, tmp_path: Path) -> None:
    """The whole page, as Chromium draws it: every section laid out in order with its
    heading and something drawn in it, every visible figure decoded and not blank."""
    html_file = tmp_path / "report.html"
    html_file.write_text(report_html, encoding="utf-8")
    layout = _layout(html_file, tmp_path)
    assert [s["id"] for s in layout["sections"]] == list(SECTIONS)
    tops = [s["top"] for s in layout["sections"]]
    assert tops == sorted(tops)
    for s in layout["sections"]:
        assert s["heading"] and s["height"] > 60, s

    png = tmp_path / "report.png"
    _screenshot(html_file, png, tmp_path, height=int(layout["height"]) + 10)
    rgb = _pixels(png)
    assert rgb.shape[0] >= layout["height"], (rgb.shape, layout["height"])  # the whole page
    non_white = np.any(rgb < 0.97, axis=-1)
    assert non_white.mean() > 0.05, "the screenshot is (almost) blank"
    for s in layout["sections"]:  # each section's band of the page has content drawn in it
        band = non_white[int(s["top"]) : int(s["top"] + s["height"])]
        assert band.mean() > 0.01, f"section {s['id']} renders blank"

    shown = [f for f in layout["figures"] if f["shown"]]
    alts = {f["alt"] for f in shown}
    assert {"scenarios side by side", "shortfall distribution of default"} <= alts, alts
    assert any(a.startswith("cascade paths of") for a in alts), alts
    for f in layout["figures"]:
        assert f["decoded"], f"figure {f['alt']!r} does not decode"
    for f in shown:
        assert f["width"] > 600 and f["height"] > 200, f
        top, left = int(f["top"]), int(f["left"])
        crop = rgb[top : top + int(f["height"]), left : left + int(f["width"])]
        colours = np.unique((crop.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
        assert len(colours) > 30, f"figure {f['alt']!r} is (almost) blank on screen"
    # The plots' ES red and VaR blue appear on screen.
    reds = (rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.2) & (rgb[..., 2] < 0.3)
    blues = (rgb[..., 2] > 0.55) & (rgb[..., 0] < 0.25)
    assert reds.sum() > 500 and blues.sum() > 500


@pytest.mark.slow
def test_chromium_check_sees_a_broken_figure(report_html: str, tmp_path: Path) -> None:
    """The layout probe is not blind: a corrupt embedded PNG is reported as not decoded."""
    broken = report_html.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1)
    assert broken != report_html
    html_file = tmp_path / "broken.html"
    html_file.write_text(broken, encoding="utf-8")
    figures = _layout(html_file, tmp_path)["figures"]
    assert sum(not f["decoded"] for f in figures) == 1


def test_snapshot_section_counts_emode_categories(results: dict[str, Path], tmp_path: Path) -> None:
    emo = tmp_path / "emode"
    shutil.copytree(results["mc"], emo)
    summary = json.loads((emo / "summary.json").read_text())
    assert summary["snapshot"]["emode"][0]["category"] == 0  # simulate records the split
    summary["snapshot"]["emode"] = [
        {"category": 0, "label": "none", "accounts": 7, "debt_usd": 3e6, "debt_share": 0.6},
        {
            "category": 1,
            "label": "ETH correlated",
            "accounts": 3,
            "debt_usd": 2e6,
            "debt_share": 0.4,
        },
    ]
    (emo / "summary.json").write_text(json.dumps(summary))
    page = make_report([emo])
    assert "Accounts and debt by e-mode category" in page
    assert "ETH correlated" in page and "40" in page
    assert "by e-mode category" not in make_report([results["mc"]])  # no e-mode: no table
