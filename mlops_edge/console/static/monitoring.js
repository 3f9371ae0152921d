/* mlops-edge console: the Monitoring page. The drift report of a model version (GET /api/monitoring,
 * the records of `mlops-edge monitor --output json`): per scope (the fleet, each device) a small chart
 * per feature, the training distribution beside the devices' on the baseline's buckets, the drift
 * distance against its threshold, and the checks violated. Plain SVG, no library; the helpers (h, api,
 * notice, main, setTitle, fmtTime) are app.js's, which calls monitoringPage(). */
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  return Math.abs(value) >= 0.001 || value === 0 ? value.toFixed(digits) : value.toExponential(1);
}

function fmtMean(value) {
  return value === null || value === undefined ? "—" : String(+value.toPrecision(4));
}

function checkWord(check) {
  return check.replace(/_check$/, "").replace(/^baseline_/, "");
}

/* Two bars per bucket: the training share (left) and the devices' share (right), on one scale. */
function histogram(f) {
  const width = 300, height = 120, pad = 18, n = f.training_fractions.length;
  const top = Math.max(0.01, ...f.training_fractions, ...f.observed_fractions);
  const slot = (width - 2) / Math.max(1, n), bar = Math.max(1, slot / 2 - 1.5);
  const y = (v) => height - pad - (v / top) * (height - pad - 6);
  const bars = [];
  f.training_fractions.forEach((v, i) => {
    const observed = f.observed_fractions[i] || 0;
    const x = 1 + i * slot;
    const edges = f.edges ? ` [${fmtMean(f.edges[i])}, ${fmtMean(f.edges[i + 1])})` : "";
    bars.push(s("rect", { class: "bar-training", x: x + 1, y: y(v), width: bar, height: height - pad - y(v) },
      s("title", {}, `bucket ${i + 1}${edges}: training ${(100 * v).toFixed(1)}%`)));
    bars.push(s("rect", { class: "bar-observed", x: x + 1 + bar, y: y(observed), width: bar, height: height - pad - y(observed) },
      s("title", {}, `bucket ${i + 1}${edges}: devices ${(100 * observed).toFixed(1)}%`)));
  });
  const axis = [s("line", { class: "axis", x1: 0, x2: width, y1: height - pad, y2: height - pad })];
  if (f.edges) {
    axis.push(s("text", { class: "tick", x: 1, y: height - 4 }, fmtMean(f.edges[0])));
    axis.push(s("text", { class: "tick", x: width - 1, y: height - 4, "text-anchor": "end" }, fmtMean(f.edges[f.edges.length - 1])));
  }
  const label = `${f.feature}: training and device distributions over ${n} buckets; distance ${fmt(f.distance)}, threshold ${fmt(f.threshold)}`;
  return s("svg", { class: "histogram", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label }, ...bars, ...axis);
}

/* The distance compared (Robust: linf_robust) on a track, with the threshold marked. */
function gauge(f) {
  const width = 300, height = 16;
  const end = Math.max(2 * f.threshold, (f.distance || 0) * 1.15, f.linf_simple || 0, 0.01);
  const x = (v) => Math.min(width, (v / end) * width);
  const over = f.distance !== null && f.distance > f.threshold;
  return s("svg", { class: "gauge", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `distance ${fmt(f.distance)} ${over ? "above" : "within"} threshold ${fmt(f.threshold)}` },
  s("rect", { class: "track", x: 0, y: 4, width, height: 8, rx: 4 }),
  s("rect", { class: over ? "fill over" : "fill", x: 0, y: 4, width: x(f.distance || 0), height: 8, rx: 4 }),
  s("line", { class: "threshold", x1: x(f.threshold), x2: x(f.threshold), y1: 0, y2: height },
    s("title", {}, `threshold ${fmt(f.threshold)}`)));
}

function featureCard(f) {
  const violated = f.checks.length > 0;
  const verdict = violated
    ? h("span", { class: "verdict verdict-fail" }, `✖ ${f.checks.map(checkWord).join(", ")}`)
    : h("span", { class: "verdict verdict-ok" }, "✔ ok");
  const distance = f.distance === null ? "no values yet"
    : `distance ${fmt(f.distance)} ${f.distance > f.threshold ? ">" : "≤"} threshold ${fmt(f.threshold)}`;
  return h("figure", { class: violated ? "feature-chart violated" : "feature-chart", "data-feature": f.feature, "data-checks": f.checks.join(" ") },
    h("figcaption", {}, h("strong", {}, f.feature), verdict),
    histogram(f),
    gauge(f),
    h("div", { class: "small distance" }, distance),
    h("div", { class: "small" },
      `mean ${fmtMean(f.mean)} (training ${fmtMean(f.training_mean)}) · present ${f.completeness === null ? "—" : (100 * f.completeness).toFixed(1) + "%"}`));
}

function scopeName(scope) {
  return scope.thing === null ? "fleet" : scope.thing;
}

async function monitoringPage() {
  setTitle("Monitoring");
  const params = new URLSearchParams(location.search);
  const status = h("div", { id: "monitoring-status", "aria-live": "polite" });
  const meta = h("span", { class: "meta", id: "monitoring-meta" });
  const scopeSelect = h("select", { id: "monitoring-scope" });
  const versionSelect = h("select", { id: "monitoring-version" });
  const summary = h("tbody");
  const charts = h("div", { class: "feature-charts", id: "feature-charts", "aria-live": "polite" });
  const rejected = h("ul", { class: "plain small", id: "monitoring-rejected" });
  main().replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Monitoring"), meta,
      h("span", { class: "toolbar" },
        h("label", { for: "monitoring-version" }, "Model version"), versionSelect,
        h("label", { for: "monitoring-scope" }, "Device"), scopeSelect)),
    status,
    h("p", { class: "legend" }, h("span", { class: "key key-training" }, "training data"),
      h("span", { class: "key key-observed" }, "devices"), h("span", { class: "key key-threshold" }, "threshold")),
    h("table", { class: "list", id: "monitoring-scopes" },
      h("thead", {}, h("tr", {}, ["Scope", "Windows judged / received", "Rows", "From", "To", "Violations", "Alert"].map((t) => h("th", {}, t)))),
      summary),
    h("h2", { id: "charts-title" }, "Features"),
    charts,
    h("h2", {}, "Windows left out"), rejected);

  let doc = null;
  let scope = params.get("scope") || "fleet";
  let chosen = params.get("model_version") || ""; // empty: the newest judged (latest.json)

  function remember() {
    const query = new URLSearchParams();
    if (chosen) query.set("model_version", chosen);
    if (scope !== "fleet") query.set("scope", scope);
    history.replaceState(null, "", `/monitoring${query.toString() ? "?" + query : ""}`);
  }

  function show() {
    const record = doc.scopes.find((r) => r.scope === scope) || doc.scopes[0];
    scope = record.scope;
    scopeSelect.replaceChildren(...doc.scopes.map((r) => h("option", { value: r.scope, selected: r.scope === scope },
      `${scopeName(r)}${r.violations.length ? " ✖" : ""}`)));
    summary.replaceChildren(...doc.scopes.map((r) => h("tr", { "data-scope": r.scope, class: [r.scope === scope ? "selected" : "", r.violations.length ? "violated" : ""].join(" ").trim() },
      h("th", { scope: "row" }, h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); scope = r.scope; show(); } }, scopeName(r))),
      h("td", { class: "num" }, `${r.windows} / ${r.received}`), h("td", { class: "num" }, r.rows),
      h("td", {}, fmtTime(r.start)), h("td", {}, fmtTime(r.end)),
      h("td", {}, r.violations.length ? r.violations.map((v) => `${v.feature_name} ${checkWord(v.constraint_check_type)}`).join(", ") : "none"),
      h("td", {}, r.alert ? `raised ${fmtTime(r.alert.raised_at)}` : "—"))));
    document.getElementById("charts-title").textContent = `Features: ${scopeName(record)} against the training data`;
    charts.replaceChildren(...record.features.map(featureCard));
    rejected.replaceChildren(...(doc.rejected.length
      ? doc.rejected.map((r) => h("li", {}, `${fmtTime(r.received_at)} ${r.thing || ""}: ${r.reason}`))
      : [h("li", {}, "none")]));
    remember();
  }

  async function refresh() {
    try {
      doc = await api(`/api/monitoring${chosen ? "?model_version=" + encodeURIComponent(chosen) : ""}`);
    } catch (err) {
      status.replaceChildren(notice(err.message, err.status === 404 ? "info" : "error"));
      return;
    }
    status.replaceChildren();
    versionSelect.replaceChildren(...doc.versions.slice().reverse().map((v) => h("option", { value: v, selected: v === doc.model_version }, v)));
    const last = doc.judge_windows;
    meta.textContent = `model ${doc.model_version} · judged ${fmtTime(doc.generated_at)} over each device's last ${last} window${last === 1 ? "" : "s"}`;
    show();
  }
  scopeSelect.addEventListener("change", () => { scope = scopeSelect.value; show(); });
  versionSelect.addEventListener("change", () => { chosen = versionSelect.value; refresh(); });
  await refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 10000);
}
