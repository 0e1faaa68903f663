// Video ids from YouTube URLs: the same forms as the service's parser
// (sentiment_pipeline.insights.youtube.parse_video_id; test/fixtures/video_urls.json holds both to it).

const ID = /^[A-Za-z0-9_-]{11}$/;
const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
const HOSTS = new Set([
  "youtube.com",
  "www.youtube.com",
  "m.youtube.com",
  "music.youtube.com",
  "youtube-nocookie.com",
  "www.youtube-nocookie.com",
]);
const SHORT_HOSTS = new Set(["youtu.be", "www.youtu.be"]);
const PATH_FORMS = new Set(["shorts", "embed", "live", "v", "e"]);

function idFromUrl(url) {
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  const host = url.hostname.toLowerCase().replace(/\.+$/, "");
  const segments = url.pathname.split("/").filter(Boolean);
  let candidate = null;
  if (SHORT_HOSTS.has(host)) {
    candidate = segments.length === 1 ? segments[0] : null;
  } else if (HOSTS.has(host)) {
    if (segments.length === 1 && segments[0] === "watch") {
      const values = url.searchParams.getAll("v").filter(Boolean);
      candidate = values.length === 1 ? values[0] : null;
    } else if (segments.length === 2 && PATH_FORMS.has(segments[0])) {
      candidate = segments[1];
    }
  }
  return candidate !== null && ID.test(candidate) ? candidate : null;
}

/**
 * The 11-character video id in `text`: a bare id or a link (watch?v=, youtu.be/, /shorts/,
 * /embed/, /live/, /v/ on youtube.com and its www., m., music. hosts or youtube-nocookie.com,
 * other query parameters ignored, with or without http(s)://); null for anything else.
 */
export function videoIdFrom(text) {
  if (typeof text !== "string") return null;
  const given = text.trim();
  if (ID.test(given)) return given;
  if (!given || /\s/.test(given)) return null;
  let url;
  try {
    url = new URL(SCHEME.test(given) ? given : `https://${given}`);
  } catch {
    return null;
  }
  return idFromUrl(url);
}

/** The video id of a browser tab's URL (an absolute http(s) URL of a video); null for any other page. */
export function videoIdOfPage(pageUrl) {
  if (typeof pageUrl !== "string" || !/^https?:\/\//i.test(pageUrl)) return null;
  return videoIdFrom(pageUrl);
}

/** The canonical watch URL of a video id (what the popup sends: no playlist, time or tracking parameters). */
export function watchUrl(videoId) {
  if (typeof videoId !== "string" || !ID.test(videoId)) {
    throw new Error(`not a YouTube video id: ${JSON.stringify(videoId)}`);
  }
  return `https://www.youtube.com/watch?v=${videoId}`;
}
