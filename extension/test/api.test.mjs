import assert from "node:assert/strict";
import { test } from "node:test";

import {
  analyzeVideo,
  buildAnalyzeRequest,
  checkHealth,
  formatWait,
  mapErrorResponse,
  parseRetryAfter,
} from "../lib/api.js";

const VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ";
const SETTINGS = { base: "http://localhost:8000", token: "s3cret", maxComments: 250 };

function fakeResponse(status, body, headers = {}) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: { get: (name) => lower[name.toLowerCase()] ?? null },
    text: async () => (typeof body === "string" ? body : JSON.stringify(body)),
  };
}

function fakeFetch(response) {
  const calls = [];
  const impl = async (url, init) => {
    calls.push({ url, init });
    if (response instanceof Error) throw response;
    return response;
  };
  return { impl, calls };
}

test("the request: POST JSON to /v1/youtube/analyze with the bearer token", () => {
  const { url, init } = buildAnalyzeRequest(SETTINGS, VIDEO);
  assert.equal(url, "http://localhost:8000/v1/youtube/analyze");
  assert.equal(init.method, "POST");
  assert.equal(init.headers.Authorization, "Bearer s3cret");
  assert.equal(init.headers["Content-Type"], "application/json");
  assert.equal(init.credentials, "omit");
  assert.deepEqual(JSON.parse(init.body), { video: VIDEO, max_comments: 250 });
});

test("no token, no Authorization header", () => {
  const { init } = buildAnalyzeRequest({ ...SETTINGS, token: "" }, VIDEO);
  assert.equal("Authorization" in init.headers, false);
});

test("a service behind a path prefix keeps it", () => {
  const { url } = buildAnalyzeRequest({ ...SETTINGS, base: "https://tools.example.org/sentiment" }, VIDEO);
  assert.equal(url, "https://tools.example.org/sentiment/v1/youtube/analyze");
});

test("an analysis comes back as the service's JSON", async () => {
  const body = { breakdown: [{ label: "positive", count: 1, share: 1 }], labels: ["positive"] };
  const fetch = fakeFetch(fakeResponse(200, body));
  const outcome = await analyzeVideo(SETTINGS, VIDEO, { fetchImpl: fetch.impl });
  assert.deepEqual(outcome, { ok: true, result: body });
  assert.equal(fetch.calls.length, 1);
  assert.ok(fetch.calls[0].init.signal, "the request can be aborted (timeout)");
});

test("401: the token is refused, or missing", async () => {
  const body = { error: "missing or wrong bearer token", error_type: "unauthorized" };
  const withToken = await analyzeVideo(SETTINGS, VIDEO, { fetchImpl: fakeFetch(fakeResponse(401, body)).impl });
  assert.equal(withToken.ok, false);
  assert.equal(withToken.error.kind, "token");
  assert.match(withToken.error.title, /refused the token \(HTTP 401\)/);
  assert.equal(withToken.error.message, "missing or wrong bearer token");
  const without = await analyzeVideo({ ...SETTINGS, token: "" }, VIDEO, {
    fetchImpl: fakeFetch(fakeResponse(401, body)).impl,
  });
  assert.match(without.error.title, /needs a token \(HTTP 401\)\. Set it in the extension's options/);
});

test("429: retry after the seconds the service names", async () => {
  const body = { error: "rate limit: 10 YouTube analyses per minute", error_type: "rate_limited" };
  const outcome = await analyzeVideo(SETTINGS, VIDEO, {
    fetchImpl: fakeFetch(fakeResponse(429, body, { "Retry-After": "17" })).impl,
  });
  assert.equal(outcome.error.kind, "rate_limited");
  assert.equal(outcome.error.retryAfter, 17);
  assert.match(outcome.error.title, /Too many analyses.*Try again in 17 s\./);
  assert.equal(outcome.error.errorType, "rate_limited");
});

test("429 with an HTTP-date Retry-After, and without one", () => {
  const now = Date.parse("2025-03-01T12:00:00Z");
  const dated = mapErrorResponse(429, "Sat, 01 Mar 2025 12:05:00 GMT", "", { nowMs: now });
  assert.equal(dated.retryAfter, 300);
  assert.match(dated.title, /Try again in 5 min\./);
  const bare = mapErrorResponse(429, null, "");
  assert.equal(bare.retryAfter, null);
  assert.match(bare.title, /Try again later\./);
});

test("503 YouTube quota: the service's words and when to retry", () => {
  const body = JSON.stringify({ error: "The YouTube API quota of this server is spent.", error_type: "youtube_quota" });
  const error = mapErrorResponse(503, "30600", body);
  assert.equal(error.kind, "server");
  assert.match(error.title, /could not answer \(HTTP 503\)\. Try again in 8 h 30 min\./);
  assert.equal(error.message, "The YouTube API quota of this server is spent.");
  assert.equal(error.errorType, "youtube_quota");
});

test("5xx without a JSON body still says what happened", () => {
  const error = mapErrorResponse(502, null, "<html>Bad Gateway</html>");
  assert.equal(error.kind, "server");
  assert.match(error.title, /HTTP 502/);
  assert.equal(error.message, null);
});

test("the service's 4xx errors are shown verbatim", async () => {
  const text = 'Comments are disabled for "<b>video</b>" dQw4w9WgXcQ.';
  const outcome = await analyzeVideo(SETTINGS, VIDEO, {
    fetchImpl: fakeFetch(fakeResponse(422, { error: text, error_type: "comments_disabled" })).impl,
  });
  assert.equal(outcome.error.kind, "request");
  assert.equal(outcome.error.message, text);
  assert.equal(outcome.error.errorType, "comments_disabled");
  assert.match(outcome.error.title, /could not analyse this video \(HTTP 422\)/);
  const plain404 = mapErrorResponse(404, null, "Not Found");
  assert.equal(plain404.kind, "not_found");
  assert.match(plain404.title, /no \/v1\/youtube\/analyze/);
  const video404 = mapErrorResponse(404, null, JSON.stringify({ error: "no video x", error_type: "video_not_found" }));
  assert.equal(video404.kind, "request");
  assert.equal(video404.message, "no video x");
});

test("network failure and timeout", async () => {
  const down = await analyzeVideo(SETTINGS, VIDEO, { fetchImpl: fakeFetch(new TypeError("Failed to fetch")).impl });
  assert.equal(down.error.kind, "network");
  assert.match(down.error.title, /Could not reach the service at http:\/\/localhost:8000/);
  assert.equal(down.error.message, "Failed to fetch");
  const hang = (url, init) =>
    new Promise((resolve, reject) => {
      init.signal.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })));
    });
  const slow = await analyzeVideo(SETTINGS, VIDEO, { fetchImpl: hang, timeoutMs: 20 });
  assert.equal(slow.error.kind, "timeout");
  assert.match(slow.error.title, /did not answer within 1 s/);
});

test("a 200 that is not an analysis is an error, not a crash", async () => {
  for (const body of ["<html>login</html>", "null", '{"status": "ok"}']) {
    const outcome = await analyzeVideo(SETTINGS, VIDEO, { fetchImpl: fakeFetch(fakeResponse(200, body)).impl });
    assert.equal(outcome.ok, false, body);
    assert.equal(outcome.error.kind, "bad_response");
  }
});

test("Retry-After parsing and wait formatting", () => {
  assert.equal(parseRetryAfter("0"), 0);
  assert.equal(parseRetryAfter(" 12 "), 12);
  assert.equal(parseRetryAfter("-5"), null);
  assert.equal(parseRetryAfter("1.5"), null);
  assert.equal(parseRetryAfter("soon"), null);
  assert.equal(parseRetryAfter(""), null);
  assert.equal(parseRetryAfter(undefined), null);
  assert.equal(parseRetryAfter("Sat, 01 Mar 2025 11:00:00 GMT", Date.parse("2025-03-01T12:00:00Z")), 0);
  assert.deepEqual([45, 119, 120, 3599, 7200, 7260].map(formatWait), ["45 s", "119 s", "2 min", "60 min", "2 h", "2 h 1 min"]);
});

test("health check for the options page", async () => {
  const good = await checkHealth("http://localhost:8000", fakeFetch(fakeResponse(200, { status: "ok" })).impl);
  assert.deepEqual(good, { ok: true, message: "The service answered http://localhost:8000/health (HTTP 200)." });
  const bad = await checkHealth("http://localhost:8000", fakeFetch(fakeResponse(500, "")).impl);
  assert.equal(bad.ok, false);
  const down = await checkHealth("http://localhost:8000", fakeFetch(new TypeError("Failed to fetch")).impl);
  assert.match(down.message, /Could not reach the service/);
});
