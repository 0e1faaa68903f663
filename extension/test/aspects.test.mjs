import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { buildAnalyzeRequest } from "../lib/api.js";
import { formatAspects, parseAspects, storedAspects } from "../lib/aspects.js";
import { renderView } from "../lib/render.js";
import { readStoredSettings, validateOptions } from "../lib/settings.js";
import { aspectRows, buildView, formatNet } from "../lib/view.js";
import { fakeDocument } from "./fake_dom.mjs";

const RESULT = JSON.parse(readFileSync(new URL("./fixtures/analysis.json", import.meta.url), "utf8"));
const BASE = "http://localhost:8000";

test("aspects: a name = its other words a line, or plain names separated by commas", () => {
  const parsed = parseAspects("delay=late, delayed\nstaff=crew,attendant,agent\n\nluggage; audio, editing");
  assert.deepEqual(parsed, {
    ok: true,
    aspects: [
      { name: "delay", terms: ["late", "delayed"] },
      { name: "staff", terms: ["crew", "attendant", "agent"] },
      { name: "luggage", terms: [] },
      { name: "audio", terms: [] },
      { name: "editing", terms: [] },
    ],
  });
  assert.deepEqual(parseAspects("Audio\naudio=sound").aspects, [{ name: "Audio", terms: ["sound"] }]);
  assert.deepEqual(parseAspects("  "), { ok: true, aspects: [] });
  assert.equal(parseAspects("=sound").ok, false);
  assert.match(parseAspects(`a=${"x".repeat(61)}`).message, /longer than 60 characters/);
});

test("aspects are written back one a line and read from storage defensively", () => {
  const aspects = [{ name: "delay", terms: ["late", "delayed"] }, { name: "luggage", terms: [] }];
  assert.equal(formatAspects(aspects), "delay=late,delayed\nluggage");
  assert.deepEqual(parseAspects(formatAspects(aspects)).aspects, aspects);
  assert.deepEqual(storedAspects([{ name: " x ", terms: ["a", 3, ""] }, { name: "" }, "y", null]), [
    { name: "x", terms: ["a"] },
  ]);
  assert.deepEqual(storedAspects("delay"), []);
});

test("the options store aspects only when some are given; the request sends them", () => {
  const form = { serviceUrl: BASE, token: "", maxComments: "10" };
  const without = validateOptions({ ...form, aspects: "" });
  assert.equal("aspects" in without.settings, false);
  const checked = validateOptions({ ...form, aspects: "audio=sound" });
  assert.deepEqual(checked.settings.aspects, [{ name: "audio", terms: ["sound"] }]);
  assert.deepEqual(validateOptions({ ...form, aspects: "=x" }).errors, {
    aspects: '"=x" has no aspect name before the =.',
  });
  const settings = readStoredSettings({ ...checked.settings });
  assert.deepEqual(settings.aspects, [{ name: "audio", terms: ["sound"] }]);
  const { init } = buildAnalyzeRequest({ base: BASE, maxComments: 10, aspects: settings.aspects }, "v");
  assert.deepEqual(JSON.parse(init.body), { video: "v", max_comments: 10, aspects: settings.aspects });
  const plain = buildAnalyzeRequest({ base: BASE, maxComments: 10, aspects: [] }, "v");
  assert.deepEqual(JSON.parse(plain.init.body), { video: "v", max_comments: 10 });
});

test("each aspect: name, mentions, net sentiment and a bar segment per class", () => {
  const [audio, found] = aspectRows(RESULT.aspects);
  assert.equal(audio.name, "audio");
  assert.equal(audio.mentionsText, "5 mentions (50.0% of comments)");
  assert.equal(audio.netText, "net −20.0 pts");
  assert.equal(audio.netInterval, "95% CI −68.0 pts to +38.0 pts");
  assert.deepEqual(audio.segments.map((s) => [s.label, s.percent]), [["negative", 60], ["neutral", 0], ["positive", 40]]);
  assert.equal(found.discovered, true);
  assert.equal(formatNet(0), "0.0 pts");
  assert.deepEqual(aspectRows(undefined), []);
});

test("the popup draws the aspects as text, and nothing without them", () => {
  const root = renderView(fakeDocument(), buildView(RESULT, { base: BASE, videoUrl: null }));
  const items = root.find("aspect");
  assert.equal(items.length, 2);
  assert.equal(items[1].find("aspect-name")[0].textContent, "<img src=x onerror=alert(2)>");
  assert.equal(items[1].find("aspect-found")[0].textContent, "suggested");
  assert.equal(items[0].find("segment")[0].style.width, "60%");
  assert.ok(![...root.walk()].some((n) => n.tagName === "img"));
  const plain = renderView(fakeDocument(), buildView({ ...RESULT, aspects: [] }, { base: BASE, videoUrl: null }));
  assert.equal(plain.find("aspects").length, 0);
});
