// The dashboard's aspects: the input's syntax, the request's fields, the results' section.
// Loaded before app.js, whose helpers ($, el, number, percent, plural, labelNode, svgDataUrl,
// appendYoutubeLink) it uses once the page runs. Comment text goes in as text nodes around a
// <mark>.
"use strict";

// `delay=late,delayed` (a name, =, its other words) one a line (or ;-separated), or plain
// names separated by commas: `audio, editing`. Returns {aspects: [{name, terms}]} or {error}.
function parseAspects(text) {
  const aspects = [];
  const seen = new Map();
  for (const piece of String(text).split(/[\n;]/)) {
    const line = piece.trim();
    if (!line) continue;
    let found;
    if (line.includes("=")) {
      const at = line.indexOf("=");
      const name = line.slice(0, at).trim();
      if (!name) return { error: `"${line}" has no aspect name before the =.` };
      const terms = line.slice(at + 1).split(",").map((t) => t.trim()).filter(Boolean);
      found = [{ name, terms }];
    } else {
      found = line.split(",").map((t) => t.trim()).filter(Boolean)
        .map((name) => ({ name, terms: [] }));
    }
    for (const aspect of found) {
      const key = aspect.name.toLowerCase();
      if (seen.has(key)) {
        const known = seen.get(key);
        for (const term of aspect.terms) if (!known.terms.includes(term)) known.terms.push(term);
      } else {
        seen.set(key, aspect);
        aspects.push(aspect);
      }
    }
  }
  return { aspects };
}

// What the aspects panel asks for: {aspects, discover} or {error} (said next to the input).
function askedAspects() {
  const parsed = parseAspects($("aspects").value);
  const raw = $("discover-aspects").value.trim();
  const discover = raw === "" ? 0 : Number(raw);
  let error = parsed.error || null;
  if (!error && !(Number.isInteger(discover) && discover >= 0)) {
    error = `Suggest aspects must be a whole number, 0 or more; it is "${raw}".`;
  }
  $("aspects-error").textContent = error || "";
  return error ? { error } : { aspects: parsed.aspects, discover };
}

// A suggestion clicked: its term added as a line of the aspects input (once).
function addAspect(term) {
  const input = $("aspects");
  const parsed = parseAspects(input.value);
  const known = (parsed.aspects || []).some((aspect) =>
    [aspect.name, ...aspect.terms].some((t) => t.toLowerCase() === term.toLowerCase()));
  if (!known) input.value = input.value.trimEnd() + (input.value.trim() ? "\n" : "") + term;
  $("aspects-error").textContent = "";
  input.focus();
}

// What the status line says for an analysis refused over its aspects (null: not about them).
function aspectRefusal(error) {
  if (error.status === 409 && error.type === "no_aspect_model") {
    return `This server has no aspect model loaded, so it cannot read aspects: ${error.message}. ` +
      "Clear the aspects and set Suggest aspects to 0 to analyse without them.";
  }
  if (error.status === 413) {
    return `Too much for one analysis (HTTP 413): ${error.message}`;
  }
  return null;
}

// --- the results' section ------------------------------------------------------------------

function signedPoints(value) {
  if (typeof value !== "number") return "–";
  const points = (value * 100).toFixed(1);
  return (value > 0 ? "+" : value < 0 ? "−" : "") + points.replace("-", "") + " pts";
}

// The comment with its aspect's term marked: offsets are in code points, as the server counts.
function markedText(text, start, end) {
  const chars = Array.from(String(text));
  const span = el("span", null, "comment-text");
  span.append(chars.slice(0, start).join(""), el("mark", chars.slice(start, end).join("")),
              chars.slice(end).join(""));
  return span;
}

function exampleItem(example) {
  const item = el("li");
  item.appendChild(markedText(example.text, example.start, example.end));
  const meta = el("span", null, "comment-meta");
  meta.appendChild(labelNode(example.label));
  meta.appendChild(document.createTextNode(
    ` ${percent(example.confidence)} sure · ${plural(example.likes, "like")}`));
  appendYoutubeLink(meta, example.url);
  item.appendChild(meta);
  return item;
}

function figure(term, value) {
  const box = el("div");
  box.append(el("dt", term), el("dd", value));
  return box;
}

function aspectBlock(aspect, labels) {
  const block = el("article", null, "aspect");
  const heading = el("h3", aspect.name);
  if (aspect.discovered) heading.append(" ", el("span", "(suggested)", "muted"));
  block.appendChild(heading);
  block.appendChild(el("p", `Terms: ${(aspect.terms || []).join(", ")}`, "muted aspect-terms"));
  const net = aspect.net || {};
  const figures = el("dl", null, "figures");
  figures.append(figure("Mentions", number(aspect.count)),
                 figure("Share of comments", percent(aspect.share)),
                 figure("Net sentiment", signedPoints(net.value)),
                 figure("95 % interval", `${signedPoints(net.ci_low)} to ${signedPoints(net.ci_high)}`));
  block.appendChild(figures);

  const weighted = {};
  for (const row of aspect.weighted_breakdown || []) weighted[row.label] = row.share;
  const table = el("table", null, "breakdown aspect-breakdown");
  table.appendChild(el("caption", `How the comments that mention ${aspect.name} feel about it`));
  const head = el("tr");
  for (const title of ["Class", "Mentions", "Share", "95 % interval", "Like-weighted share"]) {
    const th = el("th", title);
    th.scope = "col";
    head.appendChild(th);
  }
  const thead = el("thead");
  thead.appendChild(head);
  const body = el("tbody");
  for (const row of aspect.breakdown || []) {
    const tr = el("tr");
    const name = el("td");
    name.appendChild(labelNode(row.label));
    tr.append(name, el("td", number(row.count)), el("td", percent(row.share)),
              el("td", `${percent(row.ci_low)} – ${percent(row.ci_high)}`),
              el("td", percent(weighted[row.label])));
    body.appendChild(tr);
  }
  table.append(thead, body);
  block.appendChild(table);

  const columns = el("div", null, "columns");
  for (const label of labels) {
    const column = el("div");
    const title = el("h4");
    title.appendChild(labelNode(label));
    const list = el("ol", null, "comments");
    const examples = (aspect.examples && aspect.examples[label]) || [];
    list.replaceChildren(...examples.map(exampleItem));
    if (!examples.length) list.appendChild(el("li", "none", "muted"));
    column.append(title, list);
    columns.appendChild(column);
  }
  block.appendChild(columns);
  return block;
}

function suggestionItem(found) {
  const item = el("li");
  const button = el("button", `${found.term} (${number(found.count)})`, "suggestion");
  button.type = "button";
  button.title = `Add ${found.term} to the aspects`;
  button.addEventListener("click", () => addAspect(found.term));
  item.appendChild(button);
  return item;
}

// The aspects section: hidden when the analysis has no aspects and no suggestions.
function showAspects(result) {
  const aspects = result.aspects || [];
  const suggested = result.discovered_aspects || [];
  $("aspects-section").hidden = !aspects.length && !suggested.length;
  const svg = result.charts && result.charts.aspects;
  const img = $("chart-aspects");
  $("aspects-figure").hidden = !svg;
  if (svg) img.src = svgDataUrl(svg);
  else img.removeAttribute("src");
  $("suggestions-box").hidden = !suggested.length;
  $("suggestions").replaceChildren(...suggested.map(suggestionItem));
  $("aspect-list").replaceChildren(...aspects.map((aspect) =>
    aspectBlock(aspect, aspect.breakdown ? aspect.breakdown.map((row) => row.label) : [])));
}
