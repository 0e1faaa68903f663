// The options page: service URL, token, comment count, aspects; asks for permission to the service's origin.

import { formatAspects } from "./lib/aspects.js";
import { checkHealth } from "./lib/api.js";
import { DEFAULT_MAX_COMMENTS, parseServiceUrl, validateOptions } from "./lib/settings.js";

const form = document.getElementById("options");
const fields = ["serviceUrl", "token", "maxComments", "aspects"];
const status = document.getElementById("status");
const insecure = document.getElementById("insecure");

function setStatus(message, kind) {
  status.textContent = message;
  status.className = kind;
}

function showErrors(errors) {
  for (const field of fields) {
    document.getElementById(`${field}-error`).textContent = errors[field] ?? "";
  }
}

function updateInsecure() {
  const service = parseServiceUrl(form.serviceUrl.value);
  insecure.hidden = !(service.ok && service.insecure);
}

async function load() {
  const stored = await chrome.storage.local.get(fields);
  form.serviceUrl.value = typeof stored.serviceUrl === "string" ? stored.serviceUrl : "";
  form.token.value = typeof stored.token === "string" ? stored.token : "";
  form.maxComments.value = String(stored.maxComments ?? DEFAULT_MAX_COMMENTS);
  form.aspects.value = formatAspects(stored.aspects);
  updateInsecure();
  const service = parseServiceUrl(form.serviceUrl.value);
  if (service.ok && !(await chrome.permissions.contains({ origins: [service.pattern] }))) {
    setStatus(`Permission to reach ${service.origin} is not granted yet: press Save to grant it.`, "bad");
  }
}

async function dropOldPermission(previousUrl, service) {
  const previous = parseServiceUrl(previousUrl ?? "");
  if (previous.ok && previous.pattern !== service.pattern) {
    // Best effort: keep only the permission the settings need; a failure here must not undo the save.
    await chrome.permissions.remove({ origins: [previous.pattern] }).catch(() => false);
  }
}

async function save(checked, granted) {
  const { serviceUrl: previousUrl } = await chrome.storage.local.get("serviceUrl");
  await chrome.storage.local.set(checked.settings);
  if (!checked.settings.aspects) await chrome.storage.local.remove("aspects");
  await dropOldPermission(previousUrl, checked.service);
  form.serviceUrl.value = checked.settings.serviceUrl;
  form.aspects.value = formatAspects(checked.settings.aspects);
  const { origin, base } = checked.service;
  if (!granted) {
    setStatus(
      `Saved, but permission to reach ${origin} was refused: the popup cannot reach the service ` +
        "until you allow it (press Save again).",
      "bad",
    );
    return;
  }
  setStatus(`Saved. The extension may reach ${origin}. Checking the service…`, "ok");
  const health = await checkHealth(base, (url, init) => fetch(url, init));
  setStatus(`Saved. The extension may reach ${origin}.\n${health.message}`, health.ok ? "ok" : "bad");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const checked = validateOptions({
    serviceUrl: form.serviceUrl.value,
    token: form.token.value,
    maxComments: form.maxComments.value,
    aspects: form.aspects.value,
  });
  showErrors(checked.ok ? {} : checked.errors);
  if (!checked.ok) {
    setStatus("Not saved: fix the fields above.", "bad");
    return;
  }
  setStatus(`Asking the browser for permission to reach ${checked.service.origin}…`, "");
  // Asked at once, in the click's task: permissions.request needs the user gesture.
  chrome.permissions
    .request({ origins: [checked.service.pattern] })
    .then((granted) => save(checked, granted))
    .catch((error) => setStatus(`Not saved: ${error && error.message ? error.message : error}`, "bad"));
});

document.getElementById("forget").addEventListener("click", async () => {
  const { serviceUrl } = await chrome.storage.local.get("serviceUrl");
  const service = parseServiceUrl(serviceUrl ?? "");
  await chrome.storage.local.remove(fields);
  if (service.ok) await chrome.permissions.remove({ origins: [service.pattern] }).catch(() => false);
  form.reset();
  showErrors({});
  updateInsecure();
  setStatus("Settings and the permission to reach the service removed.", "ok");
});

form.serviceUrl.addEventListener("input", updateInsecure);
load().catch((error) => setStatus(`Could not read the settings: ${error.message}`, "bad"));
