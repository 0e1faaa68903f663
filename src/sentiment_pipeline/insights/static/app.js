// The dashboard: sends a YouTube link or a file to /v1/*, shows the analysis.
// Every piece of text from the server or a comment goes in with textContent or an attribute,
// never as markup; the charts are <img> elements with data: URLs.
"use strict";

const TOKEN_KEY = "sentiment-pipeline-token";

const state = { result: null, retry: null, info: null };
// The only place a comment's link may lead.
const YOUTUBE = "https://www.youtube.com/watch?";

function $(id) {
  return document.getElementById(id);
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function number(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "–";
}

function percent(share) {
  return typeof share === "number" ? (share * 100).toFixed(1) + " %" : "–";
}

function plural(count, noun) {
  return `${number(count)} ${count === 1 ? noun : noun + "s"}`;
}

// A time in this browser's time zone, with the zone's name: "24 Feb 2015, 12:35 CET".
function localTime(iso) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return iso;
  return moment.toLocaleString(undefined, {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  });
}

// --- the API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, type, retryAfter) {
    super(message);
    this.status = status;
    this.type = type;
    this.retryAfter = retryAfter;
  }
}

async function api(path, options) {
  const headers = new Headers((options && options.headers) || {});
  const saved = token();
  if (saved) headers.set("Authorization", "Bearer " + saved);
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const message = (body && (body.error || body.message)) || response.statusText;
    throw new ApiError(response.status, message, body && body.error_type,
                       response.headers.get("Retry-After"));
  }
  return body;
}

// Runs `action` (a function calling api); on a 401 asks for the token and runs it again.
async function withToken(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      askForToken(token() ? "The token was not accepted; enter it again." : null, action);
      return null;
    }
    throw error;
  }
}

function askForToken(message, retry) {
  state.retry = retry;
  if (message) $("token-message").textContent = message;
  $("token-panel").hidden = false;
  $("token-input").focus();
  setStatus("This server needs an access token.", true);
}

function useToken(event) {
  event.preventDefault();
  const value = $("token-input").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token-input").value = "";
  $("token-panel").hidden = true;
  $("forget-token").hidden = false;
  setStatus("");
  const retry = state.retry;
  state.retry = null;
  // The header's /info was refused too, and an analysis asked for since then has taken the
  // place of its retry: load it again with the token, then what was asked for.
  run(async () => {
    if (!state.info) await loadInfo();
    if (retry && retry !== loadInfo) await retry();
  });
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  $("forget-token").hidden = true;
  setStatus("The token is forgotten.");
}

// --- requests -----------------------------------------------------------------------------

async function loadInfo() {
  const info = await api("/info");
  const version = info.model_version ? " v" + info.model_version : "";
  $("model-name").textContent = `${info.model_name}${version} (${info.kind}, ${info.backend})`;
  state.info = info;
  return info;
}

function analyseVideo(event) {
  event.preventDefault();
  const asked = askedAspects();
  if (asked.error) {
    setStatus(asked.error, true);
    return;
  }
  const payload = { video: $("video").value.trim(), order: $("order").value, charts: true };
  const max = $("max-comments").value;
  if (max) payload.max_comments = Number(max);
  if (asked.aspects.length) payload.aspects = asked.aspects;
  if (asked.discover) payload.discover_aspects = asked.discover;
  run(async () => {
    setStatus("Fetching the comments and analysing them…");
    show(await api("/v1/youtube/analyze", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    }));
  });
}

function analyseFile(event) {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) {
    setStatus("Choose or drop a file first.", true);
    return;
  }
  const asked = askedAspects();
  if (asked.error) {
    setStatus(asked.error, true);
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("charts", "true");
  if (asked.aspects.length) form.append("aspects", JSON.stringify(asked.aspects));
  if (asked.discover) form.append("discover_aspects", String(asked.discover));
  const fields = [["text-column", "text_column"], ["time-column", "time_column"],
                  ["time-format", "time_format"], ["likes-column", "likes_column"],
                  ["author-column", "author_column"]];
  for (const [id, name] of fields) {
    const value = $(id).value.trim();
    if (value) form.append(name, value);
  }
  run(async () => {
    setStatus(`Analysing ${file.name}…`);
    show(await api("/v1/analyze", { method: "POST", body: form }));
  });
}

async function run(action) {
  const buttons = document.querySelectorAll("form.source button");
  buttons.forEach((button) => { button.disabled = true; });
  try {
    await withToken(action);
  } catch (error) {
    const wait = error.retryAfter ? ` (retry in ${error.retryAfter} s)` : "";
    const refusal = error instanceof ApiError ? aspectRefusal(error) : null;
    setStatus(refusal || `${error.message}${wait}`, true);
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
  }
}

// --- rendering ----------------------------------------------------------------------------

function svgDataUrl(svg) {
  const bytes = new TextEncoder().encode(svg);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return "data:image/svg+xml;base64," + btoa(binary);
}

function labelNode(label) {
  return el("span", label, "label label-" + String(label).replace(/[^a-z0-9_-]/gi, ""));
}

function commentItem(row) {
  const item = el("li");
  item.appendChild(el("span", row.text, "comment-text"));
  const meta = el("span", null, "comment-meta");
  meta.appendChild(labelNode(row.label));
  const parts = [` ${percent(row.confidence)} sure`, plural(row.likes, "like")];
  if (row.author) parts.push(row.author);
  if (row.published_at) parts.push(localTime(row.published_at));
  if (row.is_reply) parts.push("reply");
  if (row.other_language) parts.push(`other language (${row.language})`);
  meta.appendChild(document.createTextNode(parts.join(" · ")));
  appendYoutubeLink(meta, row.url);
  item.appendChild(meta);
  return item;
}

// " · open on YouTube" after `meta`, when `url` is a YouTube watch link (the only place a
// comment's link may lead).
function appendYoutubeLink(meta, url) {
  if (typeof url !== "string" || !url.startsWith(YOUTUBE)) return;
  const link = el("a", "open on YouTube", "comment-link");
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  meta.append(" · ", link);
}

function describeSource(source) {
  if (!source) return ["Results", ""];
  if (source.kind === "youtube" && source.video) {
    const video = source.video;
    return [video.title || video.id, [video.channel, video.url].filter(Boolean).join(" · ")];
  }
  if (source.kind === "file") {
    return [source.file || "File", `${number(source.rows)} rows`];
  }
  return ["Comments sent as JSON", ""];
}

function show(result) {
  if (!result) return;
  state.result = result;
  const counts = result.counts || {};
  const model = result.model || {};
  const [title, detail] = describeSource(result.source);
  $("source-title").textContent = title;
  $("source-detail").textContent = detail;
  $("fig-comments").textContent = number(counts.comments);
  $("fig-analysed").textContent = number(counts.analysed);
  $("fig-other-language").textContent = number(counts.other_language);
  $("fig-replies").textContent = number(counts.replies);
  $("fig-model").textContent = model.version ? `${model.name} v${model.version}` : model.name;
  $("fig-elapsed").textContent =
    typeof result.elapsed_s === "number" ? result.elapsed_s.toFixed(2) + " s" : "–";

  const weighted = {};
  for (const row of result.weighted_breakdown || []) weighted[row.label] = row.share;
  const rows = (result.breakdown || []).map((row) => {
    const tr = el("tr");
    const name = el("td");
    name.appendChild(labelNode(row.label));
    tr.append(name, el("td", number(row.count)), el("td", percent(row.share)),
              el("td", `${percent(row.ci_low)} – ${percent(row.ci_high)}`),
              el("td", percent(weighted[row.label])));
    return tr;
  });
  $("breakdown-rows").replaceChildren(...rows);

  for (const name of ["breakdown", "trend", "terms"]) {
    const img = $("chart-" + name);
    const svg = result.charts && result.charts[name];
    img.hidden = !svg;
    if (svg) img.src = svgDataUrl(svg);
    else img.removeAttribute("src");
  }

  const columns = (result.labels || []).map((label) => {
    const column = el("div");
    const heading = el("h3");
    heading.appendChild(labelNode(label));
    const list = el("ol", null, "comments");
    const top = (result.top_comments && result.top_comments[label]) || [];
    list.replaceChildren(...top.map(commentItem));
    if (!top.length) list.appendChild(el("li", "none", "muted"));
    column.append(heading, list);
    return column;
  });
  $("top-comments").replaceChildren(...columns);
  $("uncertain").replaceChildren(...(result.uncertain || []).map(commentItem));
  $("notes").replaceChildren(...(result.notes || []).map((note) => el("li", note)));
  showAspects(result);

  $("results").hidden = false;
  setStatus(`Analysed ${number(counts.analysed)} of ${number(counts.comments)} comments.`);
}

// --- the drop zone ------------------------------------------------------------------------

function showChosenFile() {
  const file = $("file").files[0];
  $("drop-text").textContent = file ? `${file.name} (${number(file.size)} bytes)`
    : "Drop a CSV, TSV, JSON Lines or Parquet file here, or choose one";
}

function setUpDropZone() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      $("file").files = event.dataTransfer.files;
      showChosenFile();
    }
  });
  $("file").addEventListener("change", showChosenFile);
}

// The extension links here as /#video=<encoded link>: fill the field in (as a value, never as
// markup) and leave the click to the reader, since an analysis spends the server's quota.
function prefillFromHash() {
  const prefix = "#video=";
  if (!location.hash.startsWith(prefix)) return;
  try {
    $("video").value = decodeURIComponent(location.hash.slice(prefix.length));
  } catch (error) {
    setStatus("The link in the address after #video= is not readable.", true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("youtube-form").addEventListener("submit", analyseVideo);
  $("file-form").addEventListener("submit", analyseFile);
  $("token-form").addEventListener("submit", useToken);
  $("forget-token").addEventListener("click", forgetToken);
  $("download-csv").addEventListener("click", downloadCsv);
  $("forget-token").hidden = !token();
  setUpDropZone();
  prefillFromHash();
  run(loadInfo);
});
