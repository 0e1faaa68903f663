import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { buildView, dashboardUrl, errorView, formatPercent, labelColor, SPARK, sparkline } from "../lib/view.js";

const RESULT = JSON.parse(readFileSync(new URL("./fixtures/analysis.json", import.meta.url), "utf8"));
const VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ";
const BASE = "http://localhost:8000";

test("shares as percentages with their 95% intervals", () => {
  const view = buildView(RESULT, { base: BASE, videoUrl: VIDEO });
  assert.deepEqual(
    view.rows.map((r) => [r.label, r.count, r.shareText, r.intervalText, r.barPercent, r.low, r.high]),
    [
      ["negative", 6, "60.0%", "95% CI 31.3%–83.2%", 60, 31.27, 83.18],
      ["neutral", 1, "10.0%", "95% CI 1.8%–40.4%", 10, 1.79, 40.42],
      ["positive", 3, "30.0%", "95% CI 10.8%–60.3%", 30, 10.78, 60.32],
    ],
  );
  assert.deepEqual(
    view.rows.map((r) => r.color),
    [labelColor("negative", 0), labelColor("neutral", 1), labelColor("positive", 2)],
  );
  assert.equal(view.summary, "10 of 12 comments in the breakdown");
  assert.equal(view.model, "Model: sentiment-classifier version 3 (sklearn)");
  assert.equal(view.elapsed, "1.2 s");
});

test("percent formatting", () => {
  assert.deepEqual([0, 1, 0.5, 1 / 3, 0.0005, 0.9996].map(formatPercent), ["0.0%", "100.0%", "50.0%", "33.3%", "0.1%", "100.0%"]);
  assert.equal(formatPercent(null), "–");
  assert.equal(formatPercent("0.5"), "–");
  assert.equal(formatPercent(Number.NaN), "–");
});

test("sparkline points from the trend buckets, broken at a day without comments", () => {
  const spark = sparkline(RESULT.trend, RESULT.labels);
  const { width, lineHeight, barHeight, gap, pad } = SPARK;
  assert.equal(spark.width, width);
  assert.equal(spark.height, lineHeight + gap + barHeight);
  const x = (i) => Math.round((pad + (i * (width - 2 * pad)) / 3) * 100) / 100;
  const y = (share) => Math.round((pad + (1 - share) * (lineHeight - 2 * pad)) * 100) / 100;
  const negative = spark.series.find((s) => s.label === "negative");
  assert.deepEqual(negative.segments, [[[x(0), y(0.5)]], [[x(2), y(1)], [x(3), y(0.5)]]]);
  const neutral = spark.series.find((s) => s.label === "neutral");
  assert.deepEqual(neutral.segments, [[[x(0), y(0)]], [[x(2), y(0)], [x(3), y(0.25)]]]);
  assert.equal(y(1), pad, "share 1 at the top");
  assert.equal(y(0), lineHeight - pad, "share 0 at the bottom");
  assert.deepEqual(spark.bars.map((b) => [b.count, b.height]), [[4, 16], [2, 8], [4, 16]]);
  assert.ok(spark.bars.every((b) => b.y + b.height === spark.height));
  assert.equal(spark.maxCount, 4);
  assert.equal(spark.caption, "Daily shares, 2025-03-01 – 2025-03-04 · bars: comments per day (most 4)");
});

test("one bucket is a point in the middle; hours are named with their hour", () => {
  const spark = sparkline(
    { period: "hour", buckets: [{ start: "2025-03-01T13:00:00Z", count: 3, shares: { positive: 1 } }] },
    ["negative", "positive"],
  );
  assert.deepEqual(spark.series[1].segments, [[[SPARK.width / 2, SPARK.pad]]]);
  assert.match(spark.caption, /^Hourly shares, 2025-03-01 13:00 UTC · bars: comments per hour \(most 3\)$/);
});

test("no trend: no sparkline, and the view says why", () => {
  assert.equal(sparkline({ period: null, buckets: [] }, ["positive"]), null);
  assert.equal(sparkline(undefined, ["positive"]), null);
  assert.equal(sparkline({ period: "day", buckets: "nope" }, ["positive"]), null);
  const view = buildView({ ...RESULT, trend: { period: null, buckets: [] } }, { base: BASE, videoUrl: VIDEO });
  assert.equal(view.sparkline, null);
  assert.equal(view.trendMissing, "No dated comments, so no trend.");
});

test("strings from the service stay plain strings in the view", () => {
  const view = buildView(RESULT, { base: BASE, videoUrl: VIDEO });
  assert.equal(view.title, "<img src=x onerror=alert(1)> & friends");
  assert.equal(view.channel, "Channel <b>bold</b>");
  assert.deepEqual(view.notes, RESULT.notes);
  const odd = buildView({ ...RESULT, notes: ["ok", { html: "<b>" }, 3], source: {}, model: null }, { base: BASE });
  assert.deepEqual(odd.notes, ["ok"]);
  assert.equal(odd.title, "This video");
  assert.equal(odd.model, "Model: unknown model");
});

test("the dashboard link is the service root, with the video in the hash", () => {
  assert.equal(
    dashboardUrl(BASE, VIDEO),
    "http://localhost:8000/#video=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3DdQw4w9WgXcQ",
  );
  assert.equal(dashboardUrl("https://x.org/sentiment", null), "https://x.org/sentiment/");
  assert.equal(buildView(RESULT, { base: BASE, videoUrl: VIDEO }).dashboardUrl, dashboardUrl(BASE, VIDEO));
});

test("an error becomes a title, the service's own words, and its type", () => {
  const view = errorView({ title: "T", message: "<b>verbatim</b>", errorType: "comments_disabled" });
  assert.deepEqual(view, { title: "T", detail: "<b>verbatim</b>", meta: "error_type: comments_disabled" });
  assert.deepEqual(errorView({ title: "T", message: null, errorType: null }), { title: "T", detail: null, meta: null });
});
