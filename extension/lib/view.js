// The analysis response as a view model: plain strings and numbers the popup draws (no DOM here).

export const COLORS = { negative: "#c0392b", neutral: "#7f8c8d", positive: "#1e8449" };
const EXTRA_COLORS = ["#2471a3", "#b9770e", "#7d3c98", "#148f77", "#a04000"];
const PERIOD_WORDS = {
  hour: ["Hourly", "hour"],
  day: ["Daily", "day"],
  week: ["Weekly", "week"],
  month: ["Monthly", "month"],
};

export const SPARK = { width: 300, lineHeight: 60, barHeight: 16, gap: 4, pad: 3 };

/** The colour of a class: fixed for negative/neutral/positive, else by position. */
export function labelColor(label, index) {
  return Object.hasOwn(COLORS, label) ? COLORS[label] : EXTRA_COLORS[index % EXTRA_COLORS.length];
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function text(value) {
  return typeof value === "string" ? value : null;
}

/** 0.6 -> "60.0%"; anything that is not a number -> "–". */
export function formatPercent(share) {
  return finite(share) ? `${(share * 100).toFixed(1)}%` : "–";
}

function round(value) {
  return Math.round(value * 100) / 100;
}

function clampShare(value) {
  return finite(value) ? Math.min(1, Math.max(0, value)) : 0;
}

/** The date (or hour) a bucket starts, in UTC, as the service sent it. */
export function formatBucketStart(start, period) {
  const value = text(start) ?? "";
  if (period === "hour" && value.length >= 13) return `${value.slice(0, 10)} ${value.slice(11, 13)}:00 UTC`;
  return value.slice(0, 10);
}

/**
 * Sparkline geometry from trend buckets: for each class the share over time as line
 * segments (broken at buckets with no comments, whose share means nothing), and a bar per
 * bucket for its comment count, so a 3-comment day does not look like a 300-comment day.
 * Returns null when there is nothing to draw (no trend or no buckets).
 */
export function sparkline(trend, labels) {
  if (!trend || typeof trend !== "object" || !Array.isArray(trend.buckets)) return null;
  const buckets = trend.buckets.filter((b) => b && typeof b === "object");
  if (!buckets.length) return null;
  const { width, lineHeight, barHeight, gap, pad } = SPARK;
  const height = lineHeight + gap + barHeight;
  const n = buckets.length;
  const x = (i) => round(n === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (n - 1));
  const y = (share) => round(pad + (1 - clampShare(share)) * (lineHeight - 2 * pad));
  const counts = buckets.map((b) => (finite(b.count) && b.count > 0 ? b.count : 0));
  const maxCount = Math.max(...counts);
  const barWidth = round(n === 1 ? 8 : Math.max(1, Math.min(8, ((width - 2 * pad) / (n - 1)) * 0.7)));
  const bars = counts
    .map((count, i) => ({ count, i }))
    .filter(({ count }) => count > 0)
    .map(({ count, i }) => {
      const h = round(Math.max(1, (count / maxCount) * barHeight));
      return { x: round(x(i) - barWidth / 2), y: round(height - h), width: barWidth, height: h, count };
    });
  const series = labels.map((label, index) => {
    const segments = [];
    let current = [];
    buckets.forEach((bucket, i) => {
      if (counts[i] === 0) {
        if (current.length) segments.push(current);
        current = [];
        return;
      }
      const shares = bucket.shares && typeof bucket.shares === "object" ? bucket.shares : {};
      current.push([x(i), y(shares[label])]);
    });
    if (current.length) segments.push(current);
    return { label, color: labelColor(label, index), segments };
  });
  const period = text(trend.period);
  const [adjective, unit] = PERIOD_WORDS[period] ?? ["", "period"];
  const first = formatBucketStart(buckets[0].start, period);
  const last = formatBucketStart(buckets[n - 1].start, period);
  const span = n === 1 ? first : `${first} – ${last}`;
  return {
    width,
    height,
    series,
    bars,
    maxCount,
    caption: `${adjective ? `${adjective} shares` : "Shares"}, ${span} · bars: comments per ${unit} (most ${maxCount})`,
  };
}

/**
 * Everything the popup shows for an analysis `result` (the service's JSON): strings stay
 * strings, to be inserted as text. `base` is the service URL, `videoUrl` the analysed video.
 */
export function buildView(result, { base, videoUrl }) {
  const breakdown = Array.isArray(result.breakdown) ? result.breakdown.filter((r) => r && typeof r === "object") : [];
  const labels =
    Array.isArray(result.labels) && result.labels.every((l) => typeof l === "string")
      ? result.labels
      : breakdown.map((r) => String(r.label));
  const rows = breakdown.map((row, index) => {
    const label = String(row.label);
    const share = finite(row.share) ? row.share : null;
    const low = finite(row.ci_low) ? row.ci_low : null;
    const high = finite(row.ci_high) ? row.ci_high : null;
    return {
      label,
      color: labelColor(label, labels.indexOf(label) >= 0 ? labels.indexOf(label) : index),
      count: finite(row.count) ? row.count : 0,
      share,
      shareText: formatPercent(share),
      intervalText: low !== null && high !== null ? `95% CI ${formatPercent(low)}–${formatPercent(high)}` : "",
      barPercent: round(clampShare(share) * 100),
      low: low === null ? null : round(clampShare(low) * 100),
      high: high === null ? null : round(clampShare(high) * 100),
    };
  });
  const counts = result.counts && typeof result.counts === "object" ? result.counts : {};
  const analysed = finite(counts.analysed) ? counts.analysed : rows.reduce((sum, r) => sum + r.count, 0);
  const total = finite(counts.comments) ? counts.comments : analysed;
  const source = result.source && typeof result.source === "object" ? result.source : {};
  const video = source.video && typeof source.video === "object" ? source.video : {};
  const model = result.model && typeof result.model === "object" ? result.model : {};
  const modelParts = [text(model.name) ?? "unknown model"];
  if (text(model.version)) modelParts.push(`version ${model.version}`);
  if (text(model.kind)) modelParts.push(`(${model.kind})`);
  const trend = sparkline(result.trend, labels);
  return {
    aspects: aspectRows(result.aspects),
    title: text(video.title) ?? "This video",
    channel: text(video.channel),
    summary:
      analysed === total
        ? `${analysed} comment${analysed === 1 ? "" : "s"} analysed`
        : `${analysed} of ${total} comments in the breakdown`,
    rows,
    sparkline: trend,
    trendMissing: trend ? null : "No dated comments, so no trend.",
    notes: Array.isArray(result.notes) ? result.notes.filter((note) => typeof note === "string") : [],
    model: `Model: ${modelParts.join(" ")}`,
    elapsed: finite(result.elapsed_s) ? `${result.elapsed_s.toFixed(1)} s` : null,
    dashboardUrl: dashboardUrl(base, videoUrl),
  };
}

/** "+40.0 pts" for a net sentiment of 0.4 (positive share minus negative share); "–" if absent. */
export function formatNet(value) {
  if (!finite(value)) return "–";
  const points = Math.abs(value * 100).toFixed(1);
  return `${value > 0 ? "+" : value < 0 ? "−" : ""}${points} pts`;
}

/**
 * Each aspect of the analysis as a row: its name, mentions, net sentiment with its interval,
 * and one bar segment per class (the share of its mentions), in the service's class order.
 */
export function aspectRows(aspects) {
  if (!Array.isArray(aspects)) return [];
  return aspects
    .filter((a) => a && typeof a === "object" && typeof a.name === "string")
    .map((aspect) => {
      const count = finite(aspect.count) ? aspect.count : 0;
      const net = aspect.net && typeof aspect.net === "object" ? aspect.net : {};
      const breakdown = Array.isArray(aspect.breakdown) ? aspect.breakdown.filter((r) => r && typeof r === "object") : [];
      return {
        name: aspect.name,
        discovered: aspect.discovered === true,
        mentionsText: `${count} mention${count === 1 ? "" : "s"}${finite(aspect.share) ? ` (${formatPercent(aspect.share)} of comments)` : ""}`,
        netText: `net ${formatNet(net.value)}`,
        netInterval: finite(net.ci_low) && finite(net.ci_high) ? `95% CI ${formatNet(net.ci_low)} to ${formatNet(net.ci_high)}` : "",
        segments: breakdown.map((row, index) => ({
          label: String(row.label),
          color: labelColor(String(row.label), index),
          percent: round(clampShare(row.share) * 100),
          title: `${row.label}: ${formatPercent(row.share)} (${finite(row.count) ? row.count : 0})`,
        })),
      };
    });
}

/** The full dashboard at the service root; the hash names the video so the dashboard can prefill it. */
export function dashboardUrl(base, videoUrl) {
  const root = `${base}/`;
  return videoUrl ? `${root}#video=${encodeURIComponent(videoUrl)}` : root;
}

/** An error from lib/api.js as what the popup shows: a title, the service's own words, the error type. */
export function errorView(error) {
  return {
    title: error.title,
    detail: text(error.message),
    meta: text(error.errorType) ? `error_type: ${error.errorType}` : null,
  };
}

export const MESSAGES = {
  notConfigured: {
    title: "The service URL is not set.",
    detail: "Open the extension's options and enter the address of your sentiment-pipeline service.",
    action: "Open options",
  },
  invalidSettings: (message) => ({
    title: "The saved service URL is not usable.",
    detail: message,
    action: "Open options",
  }),
  notVideoPage: {
    title: "This is not a YouTube video page.",
    detail: "Open a video (youtube.com/watch?v=… or youtube.com/shorts/…) and click the extension again.",
    action: null,
  },
  permissionMissing: (origin) => ({
    title: `Permission to reach ${origin} is not granted.`,
    detail: "Open the options and press Save: the browser will ask whether the extension may reach your service.",
    action: "Open options",
  }),
  loading: (videoId) => ({
    title: "Analysing the comments…",
    detail: `Video ${videoId}: the service fetches the comments and classifies them; this can take a while.`,
    action: null,
  }),
};
