"""Load a report in headless Chromium: the rendered DOM, a screenshot, and what each section holds.

Used by the tests (the report must render with data in a real browser) and to make the
README's screenshot. Chromium is Debian's package (``apt-get install -y chromium``;
``make browser`` does it when run as root).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = "install it with 'sudo apt-get install -y chromium' (or 'make browser' as root)"
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio"]


def find() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = find()
    if binary is None:
        raise FileNotFoundError(f"chromium not found: {INSTALL_HINT}")
    return subprocess.run([binary, *_FLAGS, *args], capture_output=True, text=True, timeout=timeout, check=True)


def dump_dom(page: Path, timeout: float = 60) -> str:
    """The DOM after Chromium has loaded and laid out the file."""
    return _run(["--dump-dom", page.resolve().as_uri()], timeout).stdout


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 5000, timeout: float = 60) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={out.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()], timeout)
    return out


def section_counts(dom: str) -> dict[str, dict[str, int]]:
    """Per section: how many data-bearing elements it rendered, and how many "no data" boxes."""
    counts: dict[str, dict[str, int]] = {}
    for match in re.finditer(r'<section id="(\w+)" data-section="\w+">(.*?)</section>', dom, re.S):
        key, body = match.group(1), match.group(2)
        counts[key] = {
            "empty": body.count('class="empty"'),
            "visited_nodes": len(re.findall(r'class="node visited"', body)),
            "failed_nodes": len(re.findall(r'class="node failed"', body)),
            "nodes": len(re.findall(r'class="node ', body)),
            "state_bars": len(re.findall(r'class="bar state', body)),
            "job_bars": len(re.findall(r'class="bar job', body)),
            "metric_rows": body.count("<tr><td>"),
            "metric_bars": body.count('class="metric-bar"'),
            "drift_plots": body.count('class="feature drift-plot"'),
            "baseline_bars": len(re.findall(r'<rect class="base" [^>]*height="(?!0\.0")', body)),
            "current_bars": len(re.findall(r'<rect class="cur" [^>]*height="(?!0\.0")', body)),
            "thresholds": body.count('class="threshold"'),
            "deploy_rows": body.count("data-deploy="),
            "serving_bars": body.count('class="serving-bar"'),
        }
    return counts
