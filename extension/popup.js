// The popup: the active tab's video -> the configured service -> the breakdown, trend and aspects.

import { analyzeVideo } from "./lib/api.js";
import { renderMessage, renderView } from "./lib/render.js";
import { readStoredSettings } from "./lib/settings.js";
import { buildView, errorView, MESSAGES } from "./lib/view.js";
import { videoIdOfPage, watchUrl } from "./lib/youtube.js";

const content = document.getElementById("content");

function show(element) {
  content.replaceChildren(element);
}

function showMessage(message, kind) {
  const { element, button } = renderMessage(document, message, kind);
  if (button) button.addEventListener("click", () => chrome.runtime.openOptionsPage());
  show(element);
}

async function activeTabUrl() {
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab && typeof tab.url === "string" ? tab.url : null;
}

async function main() {
  const settings = readStoredSettings(
    await chrome.storage.local.get(["serviceUrl", "token", "maxComments", "aspects"]),
  );
  if (!settings.configured) {
    const message = settings.reason === "missing" ? MESSAGES.notConfigured : MESSAGES.invalidSettings(settings.message);
    showMessage(message, "warning");
    return;
  }
  const videoId = videoIdOfPage(await activeTabUrl());
  if (!videoId) {
    showMessage(MESSAGES.notVideoPage, "info");
    return;
  }
  const { service } = settings;
  if (!(await chrome.permissions.contains({ origins: [service.pattern] }))) {
    showMessage(MESSAGES.permissionMissing(service.origin), "warning");
    return;
  }
  showMessage(MESSAGES.loading(videoId), "loading");
  const videoUrl = watchUrl(videoId);
  const outcome = await analyzeVideo(
    { base: service.base, token: settings.token, maxComments: settings.maxComments, aspects: settings.aspects },
    videoUrl,
    { fetchImpl: (url, init) => fetch(url, init) },
  );
  if (!outcome.ok) {
    const view = errorView(outcome.error);
    showMessage({ ...view, action: outcome.error.kind === "token" ? "Open options" : null }, "error");
    return;
  }
  show(renderView(document, buildView(outcome.result, { base: service.base, videoUrl })));
}

main().catch((error) => {
  showMessage({ title: "The extension failed.", detail: String(error && error.message ? error.message : error) }, "error");
});
