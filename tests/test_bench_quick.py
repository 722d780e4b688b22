"""The benchmarks never rot: ``make test`` runs the whole suite at its smallest
(``python -m bench --quick``) on the test services, and every script must run to the end and
report its headline figures. Goals are not checked here: machines differ."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import suite
from tests.support.workers import ROOT


@pytest.mark.timeout(900)
def test_the_quick_suite_runs_every_bench_and_reports_its_headline_figures(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    failed = {key: summary["results"][key].get("failed") for key in summary["failed"]}
    assert result.returncode == 0 and not failed, f"{failed}\n{result.stderr[-3000:]}"
    assert set(summary["results"]) == {bench.key for bench in suite.BENCHES}
    for bench in suite.BENCHES:
        figures = summary["results"][bench.key]
        assert figures["bench"] == bench.module
        assert figures["load_average"], bench.key
        for name in bench.headline:
            assert name in figures, f"{bench.key}: no {name}"
    written = sorted(tmp_path.glob("*-quick.md"))
    assert len(written) == 1 and written[0].with_suffix(".json").exists()
    text = written[0].read_text()
    assert "## Machine" in text and "| measure | goal | figure |" in text
    assert "| quick |" in text and "FAILED" not in text
