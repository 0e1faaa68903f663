// The aspects of the options: the dashboard's syntax, parsed and written back (no chrome.* here).

// Bounds of the service's AspectSpec: a term of 1 to 60 characters, at most 30 other words.
export const MAX_TERM_CHARS = 60;
export const MAX_TERMS = 30;

/**
 * `delay=late,delayed` (a name, =, its other words) one a line (or ;-separated), or plain
 * names separated by commas (`audio, editing`). Returns {ok: true, aspects: [{name, terms}]}
 * (a name given twice is one aspect) or {ok: false, message}.
 */
export function parseAspects(text) {
  const aspects = [];
  const seen = new Map();
  for (const piece of String(text ?? "").split(/[\n;]/)) {
    const line = piece.trim();
    if (!line) continue;
    let found;
    if (line.includes("=")) {
      const at = line.indexOf("=");
      const name = line.slice(0, at).trim();
      if (!name) return { ok: false, message: `"${line}" has no aspect name before the =.` };
      found = [{ name, terms: line.slice(at + 1).split(",").map((t) => t.trim()).filter(Boolean) }];
    } else {
      found = line.split(",").map((t) => t.trim()).filter(Boolean).map((name) => ({ name, terms: [] }));
    }
    for (const aspect of found) {
      const long = [aspect.name, ...aspect.terms].find((t) => t.length > MAX_TERM_CHARS);
      if (long) return { ok: false, message: `"${long.slice(0, 20)}…" is longer than ${MAX_TERM_CHARS} characters.` };
      const key = aspect.name.toLowerCase();
      if (seen.has(key)) {
        const known = seen.get(key);
        for (const term of aspect.terms) if (!known.terms.includes(term)) known.terms.push(term);
      } else {
        seen.set(key, aspect);
        aspects.push(aspect);
      }
      if (aspect.terms.length > MAX_TERMS) {
        return { ok: false, message: `${aspect.name} has more than ${MAX_TERMS} other words.` };
      }
    }
  }
  return { ok: true, aspects };
}

/** The aspects as the options field shows them: `name=term,term`, one a line. */
export function formatAspects(aspects) {
  return storedAspects(aspects)
    .map(({ name, terms }) => (terms.length ? `${name}=${terms.join(",")}` : name))
    .join("\n");
}

/** The aspects a stored value holds (it may be missing, old or edited): well-formed ones only. */
export function storedAspects(value) {
  if (!Array.isArray(value)) return [];
  return value
    .filter((a) => a && typeof a === "object" && typeof a.name === "string" && a.name.trim())
    .map((a) => ({
      name: a.name.trim(),
      terms: Array.isArray(a.terms) ? a.terms.filter((t) => typeof t === "string" && t.trim()) : [],
    }));
}
