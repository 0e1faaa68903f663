import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { videoIdFrom, videoIdOfPage, watchUrl } from "../lib/youtube.js";

const table = JSON.parse(readFileSync(new URL("./fixtures/video_urls.json", import.meta.url), "utf8"));
const ID = "dQw4w9WgXcQ";

test("every URL form people paste gives the video id", () => {
  for (const [input, why] of table.accept) assert.equal(videoIdFrom(input), ID, `${why}: ${input}`);
  for (const [input, id] of table.accept_other_ids) assert.equal(videoIdFrom(input), id, input);
});

test("anything else is rejected", () => {
  for (const [input, why] of table.reject) assert.equal(videoIdFrom(input), null, `${why}: ${input}`);
  for (const value of [null, undefined, 42, {}, ["dQw4w9WgXcQ"]]) assert.equal(videoIdFrom(value), null);
});

test("a tab's page must be an absolute http(s) URL of a video", () => {
  assert.equal(videoIdOfPage("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL1"), ID);
  assert.equal(videoIdOfPage("https://www.youtube.com/shorts/dQw4w9WgXcQ"), ID);
  assert.equal(videoIdOfPage("https://m.youtube.com/watch?v=dQw4w9WgXcQ"), ID);
  for (const page of [
    ID,
    "www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com/feed/subscriptions",
    "https://www.youtube.com/@somechannel",
    "chrome://extensions/",
    "chrome-extension://abcdefghijklmnopabcdefghijklmnop/popup.html",
    "about:blank",
    "",
    undefined,
  ]) {
    assert.equal(videoIdOfPage(page), null, String(page));
  }
});

test("the URL sent is the canonical watch URL, without the page's other parameters", () => {
  const id = videoIdOfPage("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s&si=tracking");
  assert.equal(watchUrl(id), "https://www.youtube.com/watch?v=dQw4w9WgXcQ");
  assert.throws(() => watchUrl("not an id"), /not a YouTube video id: "not an id"/);
});
