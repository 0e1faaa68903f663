// The dashboard's per-comment CSV, built in the browser from the analysis it shows (app.js
// holds `state` and `el`; this file is loaded first and only defines functions).

const FORMULA_START = /^[=+\-@\t\r]/;

// The report's CSV (sentiment-pipeline analyze --csv): the same columns, True/False, and its
// formula guard: a text cell a spreadsheet would run as a formula (=, +, -, @, tab or CR
// first) gets a ' in front. Then RFC 4180 quoting.
function csvCell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "True" : "False";
  let text = String(value);
  if (typeof value === "string" && FORMULA_START.test(text)) text = "'" + text;
  return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

function commentsCsv(result) {
  const labels = result.labels || [];
  const header = ["index", "id", "published_at", "author", "likes", "is_reply", "text", "label",
                  "confidence", ...labels.map((label) => "p_" + label), "language",
                  "other_language"];
  const lines = [header.map(csvCell).join(",")];
  for (const row of result.comments || []) {
    const scores = row.scores || {};
    lines.push([row.index, row.id, row.published_at, row.author, row.likes, row.is_reply,
                row.text, row.label, row.confidence, ...labels.map((label) => scores[label]),
                row.language, row.other_language].map(csvCell).join(","));
  }
  return lines.join("\n") + "\n";
}

function downloadCsv() {
  if (!state.result) return;
  const blob = new Blob([commentsCsv(state.result)], { type: "text/csv;charset=utf-8" });
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = "comments.csv";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}
