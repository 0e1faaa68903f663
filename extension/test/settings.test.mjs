import assert from "node:assert/strict";
import { test } from "node:test";

import {
  DEFAULT_MAX_COMMENTS,
  parseMaxComments,
  parseServiceUrl,
  parseToken,
  readStoredSettings,
  validateOptions,
} from "../lib/settings.js";

test("a service URL gives its base, origin and the permission pattern", () => {
  assert.deepEqual(parseServiceUrl(" http://localhost:8000/ "), {
    ok: true,
    base: "http://localhost:8000",
    origin: "http://localhost:8000",
    pattern: "http://localhost:8000/*",
    insecure: false,
  });
  const proxied = parseServiceUrl("https://Tools.Example.org/sentiment/");
  assert.equal(proxied.base, "https://tools.example.org/sentiment");
  assert.equal(proxied.pattern, "https://tools.example.org/*");
  assert.equal(proxied.insecure, false);
  assert.equal(parseServiceUrl("http://10.0.0.5:8000").insecure, true);
  assert.equal(parseServiceUrl("http://127.0.0.1:8000").insecure, false);
  assert.equal(parseServiceUrl("http://[::1]:8000").insecure, false);
});

test("service URLs that are not http(s) origins are refused with the reason", () => {
  const cases = [
    ["", /Enter the service URL/],
    ["localhost:8000", /must start with http:\/\/ or https:\/\/, found "localhost:"/],
    ["not a url", /"not a url" is not a URL/],
    ["ftp://example.org", /must start with http:\/\/ or https:\/\/, found "ftp:"/],
    ["javascript:alert(1)", /found "javascript:"/],
    ["https://user:secret@example.org", /user name and password/],
    ["https://example.org/?a=1", /no query/],
    ["https://example.org/#x", /no query/],
    ["https://example.org/?", /no query/],
  ];
  for (const [input, message] of cases) {
    const parsed = parseServiceUrl(input);
    assert.equal(parsed.ok, false, input);
    assert.match(parsed.message, message, input);
  }
});

test("tokens: printable ASCII without spaces, or none", () => {
  assert.deepEqual(parseToken("  s3cr3t-Token_1  "), { ok: true, token: "s3cr3t-Token_1" });
  assert.deepEqual(parseToken(""), { ok: true, token: "" });
  assert.equal(parseToken("two words").ok, false);
  assert.equal(parseToken("line\nbreak").ok, false);
  assert.equal(parseToken("naïve").ok, false);
});

test("comment counts: whole numbers from 1 to 10000, empty means the default", () => {
  assert.deepEqual(parseMaxComments("250"), { ok: true, maxComments: 250 });
  assert.deepEqual(parseMaxComments(""), { ok: true, maxComments: DEFAULT_MAX_COMMENTS });
  assert.deepEqual(parseMaxComments(10000), { ok: true, maxComments: 10000 });
  assert.match(parseMaxComments("0").message, /from 1 to 10000, found 0/);
  assert.match(parseMaxComments("10001").message, /from 1 to 10000, found 10001/);
  assert.match(parseMaxComments("2.5").message, /whole number, found "2.5"/);
  assert.match(parseMaxComments("-3").message, /whole number/);
});

test("the options form reports every bad field at once", () => {
  const checked = validateOptions({ serviceUrl: "ftp://x", token: "a b", maxComments: "lots" });
  assert.equal(checked.ok, false);
  assert.deepEqual(Object.keys(checked.errors).sort(), ["maxComments", "serviceUrl", "token"]);
  const good = validateOptions({ serviceUrl: "https://example.org/", token: "t", maxComments: "50" });
  assert.deepEqual(good.settings, { serviceUrl: "https://example.org", token: "t", maxComments: 50 });
});

test("stored settings are checked again (storage is not trusted)", () => {
  assert.deepEqual(readStoredSettings({}), { configured: false, reason: "missing" });
  assert.deepEqual(readStoredSettings(undefined), { configured: false, reason: "missing" });
  const bad = readStoredSettings({ serviceUrl: "javascript:alert(1)" });
  assert.equal(bad.configured, false);
  assert.equal(bad.reason, "invalid");
  const fine = readStoredSettings({ serviceUrl: "http://localhost:8000", token: "bad token", maxComments: "x" });
  assert.equal(fine.configured, true);
  assert.equal(fine.token, "");
  assert.equal(fine.maxComments, DEFAULT_MAX_COMMENTS);
});
