import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { renderMessage, renderView } from "../lib/render.js";
import { buildView, errorView } from "../lib/view.js";
import { fakeDocument } from "./fake_dom.mjs";

const RESULT = JSON.parse(readFileSync(new URL("./fixtures/analysis.json", import.meta.url), "utf8"));
const VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ";
const SVG = "http://www.w3.org/2000/svg";
const ALLOWED = new Set(["section", "h1", "h2", "p", "ul", "li", "div", "span", "a", "button", "svg", "title", "rect", "polyline", "circle"]);

function render(result = RESULT) {
  return renderView(fakeDocument(), buildView(result, { base: "http://localhost:8000", videoUrl: VIDEO }));
}

test("the breakdown: a row per class with its share, count, bar and interval", () => {
  const root = render();
  const rows = root.find("row");
  assert.equal(rows.length, 3);
  const [negative] = rows;
  assert.equal(negative.find("label")[0].textContent, "negative");
  assert.equal(negative.find("share")[0].textContent, "60.0%");
  assert.equal(negative.find("count")[0].textContent, "(6)");
  assert.equal(negative.find("bar")[0].style.width, "60%");
  assert.equal(negative.find("interval")[0].style.left, "31.27%");
  assert.equal(negative.find("ci")[0].textContent, "95% CI 31.3%–83.2%");
});

test("the sparkline is SVG built element by element", () => {
  const root = render();
  const [svg] = [...root.walk()].filter((n) => n.tagName === "svg");
  assert.equal(svg.namespaceURI, SVG);
  assert.equal(svg.attributes.viewBox, "0 0 300 80");
  const nodes = [...svg.walk()];
  assert.ok(nodes.every((n) => n.namespaceURI === SVG));
  assert.equal(nodes.filter((n) => n.tagName === "rect").length, 3, "a bar per day with comments");
  // the empty day breaks each line: a lone point on day 1, then a line over days 3-4
  assert.equal(nodes.filter((n) => n.tagName === "circle").length, 3);
  const lines = nodes.filter((n) => n.tagName === "polyline");
  assert.equal(lines.length, 3);
  assert.match(lines[0].attributes.points, /^[\d.]+,[\d.]+ [\d.]+,[\d.]+$/);
  assert.match(root.find("caption")[0].textContent, /^Daily shares, 2025-03-01 – 2025-03-04/);
});

test("no trend: a sentence instead of a sparkline", () => {
  const root = render({ ...RESULT, trend: { period: null, buckets: [] } });
  assert.equal([...root.walk()].some((n) => n.tagName === "svg"), false);
  assert.equal(root.find("caption")[0].textContent, "No dated comments, so no trend.");
});

test("text from the service is inserted as text, never as markup", () => {
  const root = render();
  const nodes = [...root.walk()];
  assert.deepEqual(nodes.filter((n) => !ALLOWED.has(n.tagName)), [], "only the elements render.js creates");
  assert.equal(root.find("title")[0].textContent, "<img src=x onerror=alert(1)> & friends");
  assert.equal(root.find("channel")[0].textContent, "Channel <b>bold</b>");
  const notes = root.find("notes")[0].children.map((li) => li.textContent);
  assert.deepEqual(notes, RESULT.notes);
  const link = root.find("dashboard")[0];
  assert.equal(link.href, "http://localhost:8000/#video=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3DdQw4w9WgXcQ");
  assert.equal(link.rel, "noopener noreferrer");
  assert.equal(root.find("meta")[0].textContent, "Model: sentiment-classifier version 3 (sklearn) · 1.2 s");
});

test("an error message shows the service's words verbatim, as text", () => {
  const words = '<img src=x onerror=alert(1)> is not a video; give a watch URL';
  const view = errorView({ title: "The service could not analyse this video (HTTP 422).", message: words, errorType: "bad_video" });
  const { element, button } = renderMessage(fakeDocument(), view, "error");
  assert.equal(element.className, "message error");
  assert.equal(element.find("message-detail")[0].textContent, words);
  assert.equal(element.find("message-meta")[0].textContent, "error_type: bad_video");
  assert.equal(button, null);
  assert.ok([...element.walk()].every((n) => ALLOWED.has(n.tagName)));
  const withAction = renderMessage(fakeDocument(), { title: "Set it", action: "Open options" });
  assert.equal(withAction.button.textContent, "Open options");
  assert.equal(withAction.button.type, "button");
});

test("the fake document refuses markup, so the tests above would catch its use", () => {
  const node = fakeDocument().createElement("div");
  assert.throws(() => {
    node.innerHTML = "<b>x</b>";
  }, /innerHTML used/);
  assert.throws(() => node.append("<b>x</b>"), /strings would be parsed/);
});

test("no extension script parses markup or evaluates strings", () => {
  const root = new URL("../", import.meta.url);
  const scripts = [
    ...readdirSync(root).filter((f) => f.endsWith(".js")).map((f) => new URL(f, root)),
    ...readdirSync(new URL("lib/", root)).map((f) => new URL(`lib/${f}`, root)),
  ];
  assert.ok(scripts.length >= 6);
  const banned = /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*["'`]/;
  for (const file of scripts) {
    assert.doesNotMatch(readFileSync(file, "utf8"), banned, file.pathname);
  }
});
