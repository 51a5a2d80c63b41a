"""The report in a real browser: headless Chromium loads a report built from tiny real runs.

A copy of the page gets a small checker script of ours (allowed by its hash in the page's
Content-Security-Policy) that writes what it finds into the DOM; `--dump-dom` returns it.
Console output comes from `--enable-logging=stderr`. A screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not on PATH (install it with `make browser` or apt-get install chromium)",
    ),
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
XSS = (
    '<script>document.title="pwned";window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
)
SENTINEL = "rnnlab-checker-done"

CHECKER = """
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e.type)); }, true);
document.addEventListener('securitypolicyviolation', function (e) {
  window.__errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI); });
window.addEventListener('load', function () {
  var map = Array.prototype.map;
  var out = {
    title: document.title,
    pwned: window.__pwned === undefined ? null : window.__pwned,
    scripts: document.scripts.length,
    errors: window.__errors,
    images: map.call(document.images, function (i) { return [i.complete, i.naturalWidth, i.naturalHeight]; }),
    rows: map.call(document.querySelectorAll('tr[data-row]'), function (tr) {
      return [tr.getAttribute('data-row'), map.call(tr.cells, function (c) { return c.textContent; })]; }),
    examples: map.call(document.querySelectorAll('blockquote.example'), function (b) { return b.textContent; }),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth
  };
  var pre = document.createElement('pre');
  pre.id = 'rnnlab-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
  console.log('SENTINEL');
});
""".replace("SENTINEL", SENTINEL)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report from tiny real runs: rnn + lstm on 300 bundled IMDB reviews, two diagnostics."""
    from rnnlab import api
    from rnnlab.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from rnnlab.data.summary import summarize
    from rnnlab.diagnostics import run_models
    from rnnlab.diagnostics.gradient_flow import gradient_flow
    from rnnlab.diagnostics.hidden_states import hidden_states
    from rnnlab.io import write_json_atomic
    from rnnlab.report.html import render

    root = tmp_path_factory.mktemp("browser")
    config = RunConfig(
        data=DataConfig(dataset="imdb", limit=300, max_len=48),
        model=ModelConfig(embed_dim=16, hidden_dim=16),
        train=TrainConfig(epochs=1, batch_size=32, progress=False),
    )
    api.compare(config, ["rnn", "lstm"], out=root, name="compare", verbose=False)
    entries = run_models([root / "compare" / "rnn", root / "compare" / "lstm"])
    gradient_flow(entries, seq_len=24, batch_size=4).save(root / "diagnostics" / "gradient_flow")
    hidden_states(entries, per_class=1, min_len=24, max_steps=40).save(
        root / "diagnostics" / "hidden_states"
    )
    summary = summarize(config.data).to_dict()
    summary["examples"] = [{"text": f"An awful film. {XSS} Skip it.", "label": "negative"}]
    write_json_atomic(root / "dataset.json", summary)
    return render([root], root / "report.html")


def chromium(url: str, *extra: str, profile: Path, window: str = "1280,4000") -> tuple[str, str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        f"--window-size={window}", *extra, url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def checked_copy(page: Path, folder: Path) -> Path:
    """The page with our checker in <head>, allowed by its sha256 in the CSP."""
    html = page.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(CHECKER.encode()).digest()).decode()
    assert "script-src 'none'" in html
    html = html.replace("script-src 'none'", f"script-src 'sha256-{digest}'", 1)
    html = html.replace("</head>", f"<script>{CHECKER}</script></head>", 1)
    copy = folder / "checked.html"
    copy.write_text(html, encoding="utf-8")
    return copy


def run_checker(page: Path, tmp_path: Path, window: str) -> tuple[dict[str, Any], list[str]]:
    copy = checked_copy(page, tmp_path)
    dom, stderr = chromium(
        copy.as_uri(), "--virtual-time-budget=5000", "--dump-dom",
        profile=tmp_path / f"profile-{window}", window=window,
    )  # fmt: skip
    found = re.search(r'<pre id="rnnlab-check">(.*?)</pre>', dom, re.S)
    assert found, f"the checker did not run; console: {console_messages(stderr)}"
    import html as html_lib

    return json.loads(html_lib.unescape(found.group(1))), console_messages(stderr)


def test_report_loads_cleanly_in_chromium(report: Path, tmp_path: Path) -> None:
    result, console = run_checker(report, tmp_path, "1280,4000")
    assert [m for m in console if SENTINEL not in m] == [], "console messages on the page"
    assert result["errors"] == []
    # every figure decodes to a real image
    html = report.read_text(encoding="utf-8")
    assert len(result["images"]) == html.count("<img ") >= 6
    for complete, width, height in result["images"]:
        assert complete and width > 0 and height > 0
    # the injected review is shown as text and never runs
    assert result["pwned"] is None
    assert result["title"] != "pwned" and "rnnlab report" in result["title"]
    assert result["scripts"] == 1  # our checker only
    assert any(XSS in text for text in result["examples"])


def test_tables_hold_the_numbers_from_the_run_folders(report: Path, tmp_path: Path) -> None:
    result, _ = run_checker(report, tmp_path, "1280,4000")
    rows = dict((row_id, cells) for row_id, cells in result["rows"])
    for model in ("rnn", "lstm"):
        summary = json.loads((report.parent / "compare" / model / "summary.json").read_text())
        test = summary["test"]
        cells = rows[model]
        assert cells[0] == model
        assert cells[1] == f"{test['accuracy']:.4f}"
        lo, hi = test["accuracy_interval"]
        assert cells[2] == f"{lo:.3f}–{hi:.3f}"
        assert cells[3] == f"{test['macro_f1']:.4f}"
        assert cells[4] == f"{summary['seconds_per_epoch']:.2f}"
        assert cells[5] == f"{round(summary['train_tokens_per_s']):,}"
        params = rows[f"params-{model}"]
        assert params[-1] == f"{summary['model']['parameters']['total']:,}"
        f1 = rows[f"f1-{model}"]
        assert f1[1:] == [f"{v['f1']:.4f}" for v in test["per_class"].values()]
    grad = json.loads((report.parent / "diagnostics" / "gradient_flow" / "result.json").read_text())
    for m in grad["models"]:
        assert rows[f"grad-{m['label']}"][-3] == f"{m['ratio_x']:.2e}"


def test_original_page_is_silent_and_fits_a_phone(report: Path, tmp_path: Path) -> None:
    dom, stderr = chromium(
        report.as_uri(), "--virtual-time-budget=3000", "--dump-dom",
        profile=tmp_path / "profile-phone", window="390,844",
    )  # fmt: skip
    assert console_messages(stderr) == []
    assert "&lt;script&gt;document.title" in dom
    result, _ = run_checker(report, tmp_path, "390,844")
    assert result["scrollWidth"] <= result["innerWidth"], "the page scrolls sideways on a phone"


def test_screenshot_artifacts(report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for name, window in (("report.png", "1280,4000"), ("report-phone.png", "390,2400")):
        target = ARTIFACTS / name
        target.unlink(missing_ok=True)
        chromium(
            report.as_uri(), f"--screenshot={target}", "--hide-scrollbars",
            profile=tmp_path / f"profile-shot-{name}", window=window,
        )  # fmt: skip
        assert target.is_file() and target.stat().st_size > 10_000
    shutil.copy(report, ARTIFACTS / "report.html")


def test_prints_to_pdf(report: Path, tmp_path: Path) -> None:
    pdf = ARTIFACTS / "report.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    pdf.unlink(missing_ok=True)
    chromium(
        report.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
        profile=tmp_path / "profile-pdf",
    )  # fmt: skip
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20_000
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 2
