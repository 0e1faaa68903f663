// The options: validation of the service URL, token, comment count and aspects (no chrome.* here).

import { parseAspects, storedAspects } from "./aspects.js";

export const DEFAULT_MAX_COMMENTS = 1000;
export const MAX_COMMENTS_LIMIT = 10000;
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Checks the service URL typed in the options: an http(s) URL with no user name,
 * password, query or fragment; a path is kept as a prefix (a service behind a proxy).
 * Returns {ok: true, base, origin, pattern, insecure} or {ok: false, message}.
 * `pattern` is the match pattern the extension asks permission for.
 */
export function parseServiceUrl(text) {
  const trimmed = typeof text === "string" ? text.trim() : "";
  if (!trimmed) {
    return { ok: false, message: "Enter the service URL, e.g. http://localhost:8000." };
  }
  let url;
  try {
    url = new URL(trimmed);
  } catch {
    return {
      ok: false,
      message: `"${trimmed}" is not a URL; enter the service's address, e.g. http://localhost:8000.`,
    };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return {
      ok: false,
      message: `The service URL must start with http:// or https://, found "${url.protocol}".`,
    };
  }
  if (url.username || url.password) {
    return { ok: false, message: "Leave the user name and password out of the service URL; set a token instead." };
  }
  if (url.search || url.hash || trimmed.endsWith("?") || trimmed.endsWith("#")) {
    return { ok: false, message: "The service URL takes no query (?…) or fragment (#…)." };
  }
  const path = url.pathname.replace(/\/+$/, "");
  return {
    ok: true,
    base: url.origin + path,
    origin: url.origin,
    pattern: `${url.origin}/*`,
    insecure: url.protocol === "http:" && !LOCAL_HOSTS.has(url.hostname),
  };
}

/** Checks the token: empty (no token) or printable ASCII without spaces, as an HTTP header allows. */
export function parseToken(text) {
  const token = typeof text === "string" ? text.trim() : "";
  if (!/^[\x21-\x7e]*$/.test(token)) {
    return { ok: false, message: "The token may hold only printable ASCII characters without spaces." };
  }
  return { ok: true, token };
}

/** Checks the comment count: a whole number from 1 to MAX_COMMENTS_LIMIT (empty: the default). */
export function parseMaxComments(text) {
  const trimmed = typeof text === "string" ? text.trim() : String(text ?? "");
  if (!trimmed) return { ok: true, maxComments: DEFAULT_MAX_COMMENTS };
  if (!/^\d+$/.test(trimmed)) {
    return { ok: false, message: `Comments to analyse must be a whole number, found "${trimmed}".` };
  }
  const value = Number(trimmed);
  if (value < 1 || value > MAX_COMMENTS_LIMIT) {
    return {
      ok: false,
      message: `Comments to analyse must be from 1 to ${MAX_COMMENTS_LIMIT}, found ${trimmed}.`,
    };
  }
  return { ok: true, maxComments: value };
}

/**
 * Validates the whole options form ({serviceUrl, token, maxComments, aspects} as typed) and
 * returns {ok: true, settings, service} or {ok: false, errors: {field: message}}. The settings
 * hold `aspects` only when some are given (none: the key is removed from storage).
 */
export function validateOptions(form) {
  const service = parseServiceUrl(form.serviceUrl);
  const token = parseToken(form.token);
  const count = parseMaxComments(form.maxComments);
  const aspects = parseAspects(form.aspects ?? "");
  const errors = {};
  if (!service.ok) errors.serviceUrl = service.message;
  if (!token.ok) errors.token = token.message;
  if (!count.ok) errors.maxComments = count.message;
  if (!aspects.ok) errors.aspects = aspects.message;
  if (Object.keys(errors).length) return { ok: false, errors };
  const settings = { serviceUrl: service.base, token: token.token, maxComments: count.maxComments };
  if (aspects.aspects.length) settings.aspects = aspects.aspects;
  return { ok: true, service, settings };
}

/**
 * The settings the popup uses, from what chrome.storage.local holds (anything: it may be
 * missing, old or edited); {configured: false, reason} when no usable service URL is stored.
 */
export function readStoredSettings(stored) {
  const data = stored && typeof stored === "object" ? stored : {};
  if (!data.serviceUrl) return { configured: false, reason: "missing" };
  const service = parseServiceUrl(data.serviceUrl);
  if (!service.ok) return { configured: false, reason: "invalid", message: service.message };
  const token = parseToken(data.token ?? "");
  const count = parseMaxComments(data.maxComments ?? "");
  return {
    configured: true,
    service,
    token: token.ok ? token.token : "",
    maxComments: count.ok ? count.maxComments : DEFAULT_MAX_COMMENTS,
    aspects: storedAspects(data.aspects),
  };
}
