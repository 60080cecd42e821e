"""A run's pages as a reader's browser shows them: headless Chromium (Debian's ``chromium``) at a given width.

:func:`render` loads a page into a frame of the width asked for (Chromium's headless window is never
narrower than 500 px, so a phone's 390 px is a frame inside it), lets it finish loading, and reads back
what a reader would meet: whether the page is wider than its frame (horizontal overflow), its height, how
many images it has and how many failed to load, and how many standard-error output blocks (nbconvert's
``application/vnd.jupyter.stderr``) it holds. It also saves a screenshot of the whole page at that width.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
    None,
)
FRAME = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" src="{src}" style="width:{width}px;height:{height}px;border:0;display:block"></iframe>
<script>
const STDERR = '[data-mime-type="application/vnd.jupyter.stderr"]';
document.getElementById("page").addEventListener("load", (event) => {{
  const frame = event.target.contentWindow;
  const page = frame.document.documentElement;
  const images = [...frame.document.images];
  const result = {{
    frame_width: frame.innerWidth,
    page_width: page.scrollWidth,
    height: page.scrollHeight,
    images: images.length,
    broken_images: images.filter((image) => !(image.complete && image.naturalWidth > 0)).length,
    stderr_blocks: frame.document.querySelectorAll(STDERR).length,
  }};
  const out = document.createElement("pre");
  out.id = "mammogan-probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
}});
</script></body></html>
"""
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, in containers
    "--disable-gpu",
    "--hide-scrollbars",
    "--allow-file-access-from-files",  # the frame's page is read by the probe: both are local files
    "--virtual-time-budget=15000",
)
MAX_SCREENSHOT_HEIGHT = 16_000


@dataclass(frozen=True)
class Rendered:
    page: Path
    width: int
    frame_width: int
    page_width: int
    height: int
    images: int
    broken_images: int
    stderr_blocks: int
    screenshot: Path

    @property
    def overflows(self) -> bool:
        return self.page_width > self.frame_width


def _chromium(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, *arguments], capture_output=True, text=True, timeout=180)


def render(page: Path, width: int, screenshots: Path) -> Rendered:
    """``page`` in headless Chromium, ``width`` pixels wide; its screenshot goes to ``screenshots``."""
    if CHROMIUM is None:
        raise RuntimeError("no Chromium here (Debian: apt-get install chromium)")
    page = Path(page).resolve()
    framed = page.with_name(f".{page.stem}.frame-{width}.html")
    window = f"--window-size={max(width, 500) + 20},900"
    try:
        framed.write_text(FRAME.format(src=page.name, width=width, height=900), encoding="utf-8")
        dom = _chromium(window, "--dump-dom", framed.as_uri())
        found = re.search(r'<pre id="mammogan-probe">(.*?)</pre>', dom.stdout)
        if not found:
            raise RuntimeError(f"Chromium did not report on {page}: {dom.stderr[-2000:]}")
        result = json.loads(found.group(1).replace("&quot;", '"'))
        height = min(result["height"], MAX_SCREENSHOT_HEIGHT)
        framed.write_text(FRAME.format(src=page.name, width=width, height=height), encoding="utf-8")
        screenshots.mkdir(parents=True, exist_ok=True)
        screenshot = screenshots / f"{page.stem}-{width}px.png"
        shot = _chromium(f"--window-size={width},{height}", f"--screenshot={screenshot}", framed.as_uri())
        if not screenshot.is_file():
            raise RuntimeError(f"Chromium wrote no screenshot of {page}: {shot.stderr[-2000:]}")
    finally:
        framed.unlink(missing_ok=True)
    return Rendered(page=page, width=width, screenshot=screenshot, **result)
