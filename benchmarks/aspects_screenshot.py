"""The dashboard's aspects section on the airline tweets, as docs/images/aspects-airline.jpg.

A real `sentiment-pipeline serve` (the logistic baseline of bench_insights for sentiment, the
int8 aspect model of bench_aspects beside it), the dashboard in headless Chromium, the first
10,000 tweets uploaded with three aspects asked and five more to discover. Prints the server's
time for the analysis.

    python benchmarks/aspects_screenshot.py   # after bench_aspects.py --part accuracy
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common import REPO, WORK, stop_group

ASPECTS = "delay=late,delayed,delays\nstaff=crew,attendant,agent\nluggage=bag,bags,baggage"
IMAGE = REPO / "docs" / "images" / "aspects-airline.jpg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    from bench_aspects import sentiment_baseline
    from bench_insights import sample_file

    int8 = WORK / "aspects" / "models" / "aspects" / "aspect_onnx_int8"
    if not (int8 / "model.json").is_file():
        raise SystemExit(f"no aspect model at {int8}: run bench_aspects.py --part accuracy first")
    sentiment = sentiment_baseline()
    source = sample_file(10_000)
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key != "SENTIMENT_PIPELINE_API_TOKEN"}
    env["SENTIMENT_PIPELINE_TRUST_ARTIFACTS"] = "true"
    cli = Path(sys.executable).parent / "sentiment-pipeline"
    server = subprocess.Popen(
        [str(cli), "serve", "--model", str(sentiment), "--port", str(port),
         "--params", str(REPO / "params.yaml"),
         "--set", f"serve.aspect_model={int8}", "--set", "insights.max_comments_limit=20000"],
        cwd=WORK, env=env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(300_000)
            page.goto(f"{base}/")
            page.fill("#text-column", "text")
            page.fill("#time-column", "tweet_created")
            page.fill("#time-format", "%d-%m-%Y %H.%M")
            page.fill("#likes-column", "retweet_count")
            page.fill("#aspects", ASPECTS)
            page.fill("#discover-aspects", "5")
            page.set_input_files("#file", str(source))
            started = time.perf_counter()
            with page.expect_response(lambda r: r.url.endswith("/v1/analyze")) as answered:
                page.click("#file-form button[type=submit]")
            answer = answered.value.json()
            page.wait_for_selector("#aspects-section", state="visible")
            elapsed = time.perf_counter() - started
            # The chart, the suggestions and the first aspect: the section's top 1,500 pixels.
            box = page.locator("#aspects-section").bounding_box()
            page.screenshot(path=str(IMAGE), type="jpeg", quality=80, full_page=True, clip={
                "x": box["x"], "y": box["y"], "width": box["width"],
                "height": min(box["height"], 1500)})
            browser.close()
        print(f"{len(answer['aspects'])} aspects, discovered "
              f"{[d['term'] for d in answer['discovered_aspects']]}; server "
              f"{answer['elapsed_s']} s, browser {elapsed:.1f} s; wrote {IMAGE}")
    finally:
        stop_group(server)


if __name__ == "__main__":
    main()
