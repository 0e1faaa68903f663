// Calls to the service: the request the popup sends and the messages its failures become.

export const ANALYZE_PATH = "/v1/youtube/analyze";
export const DEFAULT_TIMEOUT_MS = 180000;

/** The fetch() arguments for analysing `videoUrl` with the given settings. */
export function buildAnalyzeRequest({ base, token, maxComments, aspects }, videoUrl) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const body = { video: videoUrl };
  if (maxComments) body.max_comments = maxComments;
  if (aspects && aspects.length) body.aspects = aspects;
  return {
    url: base + ANALYZE_PATH,
    init: {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    },
  };
}

/**
 * Seconds to wait from a Retry-After header (delay-seconds or an HTTP date, RFC 9110),
 * rounded up; null when absent or unreadable.
 */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (typeof value !== "string" || !value.trim()) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (!/[a-z]/i.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** "45 s", "12 min", "3 h 5 min": a wait, for people. */
export function formatWait(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 120) return `${s} s`;
  const minutes = Math.ceil(s / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/** The service's own message from an error body: {"error", "error_type"} (or FastAPI's {"detail": str}). */
export function serviceMessage(bodyText) {
  let body;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return { message: null, errorType: null };
  }
  if (!body || typeof body !== "object") return { message: null, errorType: null };
  const message =
    typeof body.error === "string" ? body.error : typeof body.detail === "string" ? body.detail : null;
  const errorType = typeof body.error_type === "string" ? body.error_type : null;
  return { message, errorType };
}

/**
 * The error the popup shows for an HTTP failure: {kind, status, title, message, errorType,
 * retryAfter}. `message` is the service's own text, shown verbatim (as text) when it sent one.
 */
export function mapErrorResponse(status, retryAfterHeader, bodyText, { hasToken = false, nowMs } = {}) {
  const { message, errorType } = serviceMessage(bodyText);
  const retryAfter = parseRetryAfter(retryAfterHeader, nowMs);
  const wait = retryAfter === null ? "" : ` Try again in ${formatWait(retryAfter)}.`;
  const base = { status, message, errorType, retryAfter };
  if (status === 401 || status === 403) {
    return {
      ...base,
      kind: "token",
      title: hasToken
        ? `The service refused the token (HTTP ${status}). Check the token in the extension's options.`
        : `The service needs a token (HTTP ${status}). Set it in the extension's options.`,
    };
  }
  if (status === 429) {
    return {
      ...base,
      kind: "rate_limited",
      title: `Too many analyses from this client (HTTP 429).${wait || " Try again later."}`,
    };
  }
  if (status >= 500) {
    return {
      ...base,
      kind: "server",
      title: `The service could not answer (HTTP ${status}).${wait}`,
    };
  }
  if (status === 404 && message === null) {
    return {
      ...base,
      kind: "not_found",
      title: `The service has no ${ANALYZE_PATH} (HTTP 404): is the service URL in the options right?`,
    };
  }
  return {
    ...base,
    kind: "request",
    title: `The service could not analyse this video (HTTP ${status}).${wait}`,
  };
}

/** The error for a fetch() that threw: the service could not be reached or took too long. */
export function mapFetchFailure(error, base, timeoutMs) {
  if (error && error.name === "AbortError") {
    return {
      kind: "timeout",
      status: null,
      title: `The service at ${base} did not answer within ${formatWait(timeoutMs / 1000)}.`,
      message: null,
      errorType: null,
      retryAfter: null,
    };
  }
  return {
    kind: "network",
    status: null,
    title: `Could not reach the service at ${base}. Is it running, and is the URL in the options right?`,
    message: error && typeof error.message === "string" ? error.message : String(error),
    errorType: null,
    retryAfter: null,
  };
}

/**
 * Analyses `videoUrl`: {ok: true, result} with the service's JSON, or {ok: false, error}.
 * `fetchImpl` is injected (the browser's fetch in the popup, a fake in tests).
 */
export async function analyzeVideo(settings, videoUrl, { fetchImpl, timeoutMs = DEFAULT_TIMEOUT_MS, nowMs } = {}) {
  const { url, init } = buildAnalyzeRequest(settings, videoUrl);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  let bodyText;
  try {
    response = await fetchImpl(url, { ...init, signal: controller.signal });
    bodyText = await response.text();
  } catch (error) {
    return { ok: false, error: mapFetchFailure(error, settings.base, timeoutMs) };
  } finally {
    clearTimeout(timer);
  }
  if (response.status < 200 || response.status > 299) {
    const error = mapErrorResponse(response.status, response.headers.get("Retry-After"), bodyText, {
      hasToken: Boolean(settings.token),
      nowMs,
    });
    return { ok: false, error };
  }
  let result;
  try {
    result = JSON.parse(bodyText);
  } catch {
    result = null;
  }
  if (!result || typeof result !== "object" || !Array.isArray(result.breakdown)) {
    return {
      ok: false,
      error: {
        kind: "bad_response",
        status: response.status,
        title: `The service answered HTTP ${response.status} but not with an analysis: is the service URL right?`,
        message: null,
        errorType: null,
        retryAfter: null,
      },
    };
  }
  return { ok: true, result };
}

/** Whether the service answers GET /health: {ok, message} for the options page. */
export async function checkHealth(base, fetchImpl, { timeoutMs = 10000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetchImpl(`${base}/health`, {
      credentials: "omit",
      cache: "no-store",
      signal: controller.signal,
    });
    if (response.ok) return { ok: true, message: `The service answered ${base}/health (HTTP ${response.status}).` };
    return { ok: false, message: `The service answered ${base}/health with HTTP ${response.status}.` };
  } catch (error) {
    return { ok: false, message: mapFetchFailure(error, base, timeoutMs).title };
  } finally {
    clearTimeout(timer);
  }
}
