// DOM for the popup from a view model (lib/view.js), through a given `document`: every
// string from the service goes in as a text node (textContent), never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function el(doc, tag, className, content) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined && content !== null) node.textContent = content;
  return node;
}

function svg(doc, tag, attributes) {
  const node = doc.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function breakdownRow(doc, row) {
  const item = el(doc, "li", "row");
  const head = el(doc, "div", "row-head");
  const swatch = el(doc, "span", "swatch");
  swatch.style.backgroundColor = row.color;
  head.append(swatch, el(doc, "span", "label", row.label), el(doc, "span", "share", row.shareText));
  head.append(el(doc, "span", "count", `(${row.count})`));
  const track = el(doc, "div", "track");
  const bar = el(doc, "div", "bar");
  bar.style.width = `${row.barPercent}%`;
  bar.style.backgroundColor = row.color;
  track.append(bar);
  if (row.low !== null && row.high !== null) {
    const interval = el(doc, "div", "interval");
    interval.style.left = `${row.low}%`;
    interval.style.width = `${Math.max(0, row.high - row.low)}%`;
    interval.title = row.intervalText;
    track.append(interval);
  }
  item.append(head, track);
  if (row.intervalText) item.append(el(doc, "div", "ci", row.intervalText));
  return item;
}

/** The trend sparkline as an <svg>: count bars below, one line per class above. */
export function renderSparkline(doc, spark) {
  const root = svg(doc, "svg", {
    class: "sparkline",
    width: spark.width,
    height: spark.height,
    viewBox: `0 0 ${spark.width} ${spark.height}`,
    role: "img",
  });
  const title = svg(doc, "title", {});
  title.textContent = spark.caption;
  root.append(title);
  for (const bar of spark.bars) {
    const rect = svg(doc, "rect", { x: bar.x, y: bar.y, width: bar.width, height: bar.height, class: "volume" });
    const tip = svg(doc, "title", {});
    tip.textContent = String(bar.count);
    rect.append(tip);
    root.append(rect);
  }
  for (const line of spark.series) {
    for (const segment of line.segments) {
      if (segment.length === 1) {
        const [[cx, cy]] = segment;
        root.append(svg(doc, "circle", { cx, cy, r: 2, fill: line.color }));
      } else {
        const points = segment.map(([x, y]) => `${x},${y}`).join(" ");
        root.append(svg(doc, "polyline", { points, fill: "none", stroke: line.color, "stroke-width": 1.5 }));
      }
    }
  }
  return root;
}

/** An aspect: its name, mentions and net sentiment, and a bar of its classes' shares. */
function aspectItem(doc, aspect) {
  const item = el(doc, "li", "aspect");
  const head = el(doc, "div", "aspect-head");
  head.append(el(doc, "span", "aspect-name", aspect.name));
  if (aspect.discovered) head.append(el(doc, "span", "aspect-found", "suggested"));
  head.append(el(doc, "span", "aspect-net", aspect.netText));
  const bar = el(doc, "div", "aspect-bar");
  for (const segment of aspect.segments) {
    const part = el(doc, "div", "segment");
    part.style.width = `${segment.percent}%`;
    part.style.backgroundColor = segment.color;
    part.title = segment.title;
    bar.append(part);
  }
  const meta = [aspect.mentionsText, aspect.netInterval].filter(Boolean).join(" · ");
  item.append(head, bar, el(doc, "div", "aspect-meta", meta));
  return item;
}

/** The analysis: title, summary, breakdown bars, sparkline, aspects, notes, model and the dashboard link. */
export function renderView(doc, view) {
  const root = el(doc, "section", "result");
  root.append(el(doc, "h1", "title", view.title));
  if (view.channel) root.append(el(doc, "p", "channel", view.channel));
  root.append(el(doc, "p", "summary", view.summary));
  const list = el(doc, "ul", "breakdown");
  for (const row of view.rows) list.append(breakdownRow(doc, row));
  root.append(list);
  const trend = el(doc, "div", "trend");
  if (view.sparkline) {
    trend.append(renderSparkline(doc, view.sparkline), el(doc, "p", "caption", view.sparkline.caption));
  } else {
    trend.append(el(doc, "p", "caption", view.trendMissing));
  }
  root.append(trend);
  if (view.aspects.length) {
    root.append(el(doc, "h2", "aspects-title", "Aspects"));
    const aspects = el(doc, "ul", "aspects");
    for (const aspect of view.aspects) aspects.append(aspectItem(doc, aspect));
    root.append(aspects);
  }
  if (view.notes.length) {
    const notes = el(doc, "ul", "notes");
    for (const note of view.notes) notes.append(el(doc, "li", null, note));
    root.append(notes);
  }
  const footer = el(doc, "p", "meta", view.elapsed ? `${view.model} · ${view.elapsed}` : view.model);
  root.append(footer);
  const link = el(doc, "a", "dashboard", "Open the full dashboard");
  link.href = view.dashboardUrl;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  root.append(link);
  return root;
}

/**
 * A message box ({title, detail, meta, action}: all plain text). Returns {element, button}:
 * `button` (null without an action) is for the popup to attach its handler to.
 */
export function renderMessage(doc, message, kind = "info") {
  const root = el(doc, "section", `message ${kind}`);
  root.append(el(doc, "p", "message-title", message.title));
  if (message.detail) root.append(el(doc, "p", "message-detail", message.detail));
  if (message.meta) root.append(el(doc, "p", "message-meta", message.meta));
  let button = null;
  if (message.action) {
    button = el(doc, "button", "action", message.action);
    button.type = "button";
    root.append(button);
  }
  return { element: root, button };
}
