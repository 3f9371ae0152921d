/* mlops-edge console: one script for the five pages. Each page is a plain URL; this reads the
 * address, asks the JSON API under /api and keeps the view current (server-sent events where the
 * data is live). No framework, no build step, nothing fetched from the network. */
"use strict";

// ---------------------------------------------------------------------------------------------
// helpers

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

class ApiError extends Error {
  constructor(message, status, problems) {
    super(message);
    this.status = status;
    this.problems = problems || [];
  }
}

async function api(path, options) {
  const init = { headers: {}, credentials: "same-origin" };
  if (options && options.body !== undefined) {
    init.method = options.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new ApiError((body && body.error) || `${response.status} ${response.statusText}`, response.status, body && body.problems);
  }
  return body;
}

function fmtTime(value) {
  if (!value) return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (isNaN(d)) return String(value);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function badge(status) {
  const text = status || "unknown";
  return h("span", { class: `badge badge-${String(text).toLowerCase().replace(/[^a-z_]/g, "")}` }, text);
}

function pretty(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch (e) { return value; }
  }
  return JSON.stringify(value, null, 2);
}

/* A Lambda error's cause is its error document as JSON: the message is what a person reads first. */
function causeMessage(cause) {
  try {
    const parsed = JSON.parse(cause);
    if (parsed && typeof parsed === "object" && parsed.errorMessage) return parsed.errorMessage;
  } catch (e) { /* a plain-text cause */ }
  return cause;
}

function notice(text, kind) {
  return h("p", { class: `notice notice-${kind || "info"}`, role: kind === "error" ? "alert" : "status" }, text);
}

const main = () => document.getElementById("main");

function setTitle(text) {
  document.title = `${text} · mlops-edge console`;
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------------------------------------------------------------------------------------------
// Executions

async function executionsPage() {
  setTitle("Executions");
  const status = h("div", { id: "executions-status" });
  const rows = h("tbody");
  const problems = h("ul", { class: "problems", id: "input-problems", "aria-live": "polite" });
  const input = h("textarea", { id: "input", rows: 18, spellcheck: "false", "aria-describedby": "input-problems" });
  const name = h("input", { id: "execution-name", type: "text", placeholder: "console-<time>", autocomplete: "off" });
  const startButton = h("button", { type: "submit", class: "primary" }, "Start execution");
  const form = h("form", { "aria-label": "Start execution", class: "start-form" },
    h("label", { for: "input" }, "Input"), input,
    h("label", { for: "execution-name" }, "Name (optional)"), name,
    problems, h("div", { class: "actions" }, startButton));
  main().replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Executions")),
    h("div", { class: "columns" },
      h("section", { class: "wide", "aria-label": "Execution list" }, status,
        h("table", { class: "list", id: "executions" },
          h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Started"),
            h("th", {}, "Stopped"), h("th", {}, "Duration"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
          rows)),
      h("section", { class: "side", "aria-label": "New execution" }, h("h2", {}, "New execution"), form)));

  api("/api/input").then((data) => {
    if (!input.value) input.value = JSON.stringify(data.example, null, 2);
  }).catch((err) => problems.replaceChildren(h("li", {}, err.message)));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problems.replaceChildren();
    let document_;
    try {
      document_ = JSON.parse(input.value);
    } catch (err) {
      problems.replaceChildren(h("li", {}, h("code", {}, "$"), ": not JSON: ", err.message));
      input.setAttribute("aria-invalid", "true");
      return;
    }
    startButton.disabled = true;
    try {
      const started = await api("/api/executions", { body: { input: document_, name: name.value.trim() || null } });
      location.assign(`/executions/${started.arn}`);
    } catch (err) {
      input.setAttribute("aria-invalid", "true");
      const items = err.problems.length
        ? err.problems.map((p) => h("li", {}, h("code", {}, p.path), ": ", p.message))
        : [h("li", {}, err.message)];
      problems.replaceChildren(...items);
    } finally {
      startButton.disabled = false;
    }
  });
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"));

  async function refresh() {
    try {
      const data = await api("/api/executions");
      status.replaceChildren();
      rows.replaceChildren(...data.executions.map((e) => h("tr", { "data-name": e.name },
        h("td", {}, h("a", { href: `/executions/${e.arn}` }, e.name)),
        h("td", {}, badge(e.status)),
        h("td", {}, fmtTime(e.started)),
        h("td", {}, fmtTime(e.stopped)),
        h("td", {}, fmtDuration(e.duration_s)),
        h("td", {}, e.status === "RUNNING"
          ? h("button", { type: "button", "aria-label": `Stop ${e.name}`, onclick: () => stopExecution(e.arn).then(refresh) }, "Stop")
          : ""))));
      if (!data.executions.length) status.replaceChildren(notice("No executions yet: start one with the form."));
    } catch (err) {
      status.replaceChildren(notice(err.message, "error"));
    }
  }
  await refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 2000);
}

async function stopExecution(arn) {
  try { await api(`/api/executions/${arn}/stop`, { body: {} }); } catch (err) { alert(err.message); }
}

// ---------------------------------------------------------------------------------------------
// Execution detail

const PAGE_SIZE = 25;

function stateOf(event) {
  for (const key of Object.keys(event)) {
    if (key.endsWith("EventDetails") && event[key] && event[key].name) return event[key].name;
  }
  return "";
}

/* The Rollout panel's status -> the graph's colour for a state (succeeded, running, failed,
 * stopped, not run), drawn with the graph legend's own swatch. */
const STAGE_COLOUR = { SUCCEEDED: "succeeded", RUNNING: "running", FAILED: "failed", STOPPED: "stopped" };
const STAGE_COLUMNS = ["Stage", "Thing group", "Status", "Targeted", "Succeeded", "Failed", "Verified", "Time"];

/* One row per rollout stage, as the stream's progress.rollout gives them (the run report's rows
 * for the stages that ended, then the stages to come; the current one marked). */
function rolloutRows(rollout) {
  const cell = (value) => (value === null || value === undefined ? "—" : value);
  return (rollout ? rollout.stages : []).map((s) => h("tr", {
    class: s.current ? "current" : null, "data-stage": s.name, "data-status": s.status, "aria-current": s.current ? "step" : null },
  h("th", { scope: "row" }, s.current ? h("span", { class: "current-mark", "aria-hidden": "true" }, "▶ ") : "", s.name,
    s.current ? h("span", { class: "sr-only" }, " (current stage)") : ""),
  h("td", {}, cell(s.thing_group)),
  h("td", { class: "stage-status" }, h("span", { class: `key key-${STAGE_COLOUR[s.status] || "none"}` }, s.status)),
  ...["targeted", "succeeded", "failed", "verified"].map((k) => h("td", { class: "num" }, cell(s[k]))),
  h("td", { class: "num" }, s.seconds === null || s.seconds === undefined ? (s.current ? "running" : "—") : fmtDuration(s.seconds))));
}

async function executionPage(arn) {
  setTitle("Execution");
  const head = h("div", { class: "page-head" }, h("h1", {}, "Execution"));
  const banner = h("div", { id: "banner" });
  const graphBox = h("div", { class: "graph-box", id: "graph" }, notice("Drawing the graph…"));
  const detail = h("aside", { class: "state-detail", id: "state-detail", "aria-label": "State details", "aria-live": "polite" },
    h("p", { class: "hint" }, "Select a state in the graph to see its input, output, error and retries."));
  const historyBody = h("tbody");
  const pager = h("div", { class: "pager" });
  const graphTools = h("div", { class: "graph-tools" });
  const stagesBody = h("tbody");
  main().replaceChildren(head, banner, graphTools,
    h("div", { class: "execution-view" }, graphBox, detail),
    h("section", { "aria-label": "Rollout", class: "rollout" }, h("h2", {}, "Rollout"),
      h("table", { class: "list stages", id: "rollout" },
        h("thead", {}, h("tr", {}, STAGE_COLUMNS.map((t) => h("th", {}, t)))),
        stagesBody)),
    h("section", { "aria-label": "Event history" }, h("h2", {}, "Event history"),
      h("table", { class: "list history", id: "history" },
        h("thead", {}, h("tr", {}, h("th", {}, "ID"), h("th", {}, "Type"), h("th", {}, "Step"), h("th", {}, "Time"), h("th", {}, "Details"))),
        historyBody),
      pager));

  let info;
  try {
    info = await api(`/api/executions/${arn}`);
  } catch (err) {
    graphBox.replaceChildren(notice(err.message, "error"));
    return;
  }
  setTitle(info.name);
  const statusBadge = h("span", { id: "execution-status" }, badge(info.status));
  const duration = h("span", { id: "execution-duration" }, fmtDuration(info.duration_s));
  const stop = h("button", { type: "button", onclick: () => stopExecution(arn) }, "Stop");
  const exportLink = h("a", { class: "button", href: `/api/executions/${arn}/history`, download: `${info.name}-history.json` }, "Export");
  head.replaceChildren(
    h("h1", {}, info.name), statusBadge,
    h("span", { class: "meta" }, `started ${fmtTime(info.started)} · `, duration),
    h("span", { class: "actions" }, info.status === "RUNNING" ? stop : "", exportLink));

  const events = new Map();
  let selected = null;
  let progress = { states: {}, status: info.status };
  let page = 0;
  let followLatest = true;
  let shownStages = "";
  const layout = consoleGraph.layoutGraph(info.graph);
  const drawn = consoleGraph.drawGraph(graphBox, layout, (name) => { selected = name; drawn.select(name); showState(); });
  const fit = () => Math.min(1, (graphBox.clientWidth - 16) / layout.width);
  let scale = Math.max(0.6, fit());
  const zoomLabel = h("span", { class: "meta", id: "zoom" });
  const zoom = (value) => { scale = Math.min(2, Math.max(0.2, value)); drawn.zoom(scale); zoomLabel.textContent = `${Math.round(scale * 100)}%`; };
  zoom(scale);
  graphTools.replaceChildren(h("span", { class: "legend" },
    h("span", { class: "key key-succeeded" }, "succeeded"), h("span", { class: "key key-running" }, "running"),
    h("span", { class: "key key-failed" }, "failed"), h("span", { class: "key key-none" }, "not run"),
    h("span", { class: "key key-choice" }, "choice"), h("span", { class: "key key-catch" }, "catch"), h("span", { class: "key key-retry" }, "retry")),
  h("span", { class: "zoom" },
    h("button", { type: "button", "aria-label": "Zoom out", onclick: () => zoom(scale / 1.25) }, "−"), zoomLabel,
    h("button", { type: "button", "aria-label": "Zoom in", onclick: () => zoom(scale * 1.25) }, "+"),
    h("button", { type: "button", onclick: () => zoom(fit()) }, "Fit")));
  const statesByName = new Map(info.graph.nodes.map((n) => [n.id, n]));

  function showState() {
    if (!selected) return;
    const node = statesByName.get(selected) || { type: "" };
    const state = progress.states[selected];
    const mine = [...events.values()].filter((e) => stateOf(e) === selected);
    const entered = mine.filter((e) => e.type.endsWith("StateEntered")).pop();
    const exited = mine.filter((e) => e.type.endsWith("StateExited")).pop();
    const rows = [
      ["Type", node.type],
      ["Status", state ? state.status : "not run"],
    ];
    if (state) {
      rows.push(["Visits", state.visits], ["Retries", state.retries], ["Duration", fmtDuration(state.duration_s)]);
      if (state.error) rows.push(["Error", state.error]);
    }
    if (node.retry) rows.push(["Retry rules", node.retry.join("; ")]);
    detail.replaceChildren(
      h("h2", {}, selected),
      h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
      ...(state && state.cause ? [h("h3", {}, "Cause"), h("pre", { class: "json", id: "state-cause" }, pretty(state.cause))] : []),
      h("h3", {}, "Input"), h("pre", { class: "json", id: "state-input" }, entered ? pretty(entered.stateEnteredEventDetails.input) : "(not entered)"),
      h("h3", {}, "Output"), h("pre", { class: "json", id: "state-output" }, exited ? pretty(exited.stateExitedEventDetails.output) : "(no output yet)"));
  }

  function showBanner() {
    if (progress.status === "RUNNING" || progress.status === "SUCCEEDED") {
      banner.replaceChildren(progress.status === "SUCCEEDED" ? notice("The execution succeeded.", "ok") : "");
      return;
    }
    const where = progress.failed_state ? `in ${progress.failed_state}` : "";
    banner.replaceChildren(h("div", { class: "banner-failed", role: "alert" },
      h("strong", {}, `Execution ${progress.status.toLowerCase().replace("_", " ")} ${where}`),
      progress.error ? h("div", {}, h("code", {}, progress.error)) : "",
      progress.cause ? h("p", { class: "cause-message" }, causeMessage(progress.cause)) : "",
      progress.cause ? h("details", {}, h("summary", {}, "Full cause"), h("pre", { class: "cause" }, pretty(progress.cause))) : ""));
  }

  function showHistory() {
    const all = [...events.values()].sort((a, b) => a.id - b.id);
    let current = "";
    const step = new Map();
    for (const e of all) {
      const own = stateOf(e);
      if (e.type.endsWith("StateEntered")) current = own;
      step.set(e.id, own || (e.type.startsWith("Execution") ? "" : current));
      if (e.type.endsWith("StateExited")) current = "";
    }
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    if (followLatest) page = 0;
    page = Math.min(page, pages - 1);
    // newest first, as the AWS console shows it
    const shown = all.reverse().slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    historyBody.replaceChildren(...shown.map((e) => {
      const detailKey = Object.keys(e).find((k) => k.endsWith("EventDetails"));
      return h("tr", {},
        h("td", {}, e.id),
        h("td", {}, e.type),
        h("td", {}, step.get(e.id)),
        h("td", {}, fmtTime(e.timestamp)),
        h("td", {}, detailKey ? h("details", {}, h("summary", {}, "Details"), h("pre", { class: "json" }, pretty(e[detailKey]))) : ""));
    }));
    pager.replaceChildren(
      h("button", { type: "button", disabled: page === 0, onclick: () => { page -= 1; followLatest = page === 0; showHistory(); } }, "Newer"),
      h("span", {}, `page ${page + 1} of ${pages} · ${all.length} events`),
      h("button", { type: "button", disabled: page >= pages - 1, onclick: () => { page += 1; followLatest = false; showHistory(); } }, "Older"));
  }

  function apply(data) {
    for (const e of data.events) events.set(e.id, e);
    progress = data.progress;
    for (const [name, state] of Object.entries(progress.states)) {
      const detailText = `${state.visits} visit${state.visits === 1 ? "" : "s"}${state.retries ? `, ${state.retries} retries` : ""}`;
      drawn.setStatus(name, state.status, detailText);
    }
    statusBadge.replaceChildren(badge(progress.status));
    if (progress.status !== "RUNNING") {
      stop.remove();
      if (progress.started_at && progress.ended_at) {
        duration.textContent = fmtDuration((new Date(progress.ended_at) - new Date(progress.started_at)) / 1000);
      }
    }
    const stages = JSON.stringify(progress.rollout || null);
    if (stages !== shownStages) {
      shownStages = stages;
      stagesBody.replaceChildren(...rolloutRows(progress.rollout));
    }
    showBanner();
    showHistory();
    if (selected) showState();
    document.body.dataset.lastEvent = String(Math.max(0, ...events.keys()));
  }

  const source = new EventSource(`/api/executions/${arn}/stream`);
  source.addEventListener("history", (ev) => apply(JSON.parse(ev.data)));
  source.addEventListener("end", () => source.close());
  source.addEventListener("error", (ev) => {
    if (ev.data) {
      banner.replaceChildren(notice(JSON.parse(ev.data).error, "error"));
      source.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Models

function metricsList(metrics) {
  const entries = Object.entries(metrics || {});
  if (!entries.length) return "";
  return h("ul", { class: "plain" }, entries.map(([k, v]) => h("li", {}, `${k} ${typeof v === "number" ? +v.toPrecision(4) : v}`)));
}

function parityText(parity) {
  if (!parity || !Object.keys(parity).length) return "";
  const passed = parity.passed === undefined ? "" : parity.passed ? "passed" : "FAILED";
  const abs = parity.max_abs_diff ?? parity.max_abs;
  const rel = parity.max_rel_diff ?? parity.max_rel;
  return [passed, abs !== undefined ? `max abs ${Number(abs).toExponential(2)}` : "", rel !== undefined ? `max rel ${Number(rel).toExponential(2)}` : ""]
    .filter(Boolean).join(", ");
}

async function modelsPage() {
  setTitle("Models");
  const status = h("div", { id: "models-status", "aria-live": "polite" });
  const rows = h("tbody");
  const group = h("span", { class: "meta" });
  main().replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Models"), group),
    status,
    h("table", { class: "list", id: "models" },
      h("thead", {}, h("tr", {}, ["Version", "Approval", "Created", "Metrics", "ONNX parity", "Component", "Deployed on", "Actions"].map((t) => h("th", {}, t)))),
      rows));

  async function decide(model, decision) {
    try {
      await api(`/api/models/${model.arn}/approval`, { body: { status: decision, description: `${decision} in mlops-edge console` } });
      status.replaceChildren(notice(`Version ${model.version} ${decision.toLowerCase()}.` +
        (decision === "Approved" ? " The approval rule starts a deploy-only execution: see Executions." : ""), "ok"));
    } catch (err) {
      status.replaceChildren(notice(err.message, "error"));
    }
    refresh();
  }

  async function refresh() {
    let data;
    try {
      data = await api("/api/models");
    } catch (err) {
      status.replaceChildren(notice(err.message, "error"));
      return;
    }
    group.textContent = `model package group ${data.group}`;
    if (data.note) status.replaceChildren(notice(data.note));
    rows.replaceChildren(...data.models.map((m) => h("tr", { "data-version": m.version, "aria-label": `version ${m.version}` },
      h("th", { scope: "row" }, `version ${m.version}`),
      h("td", {}, badge(m.approval), m.approval_description ? h("div", { class: "small" }, m.approval_description) : ""),
      h("td", {}, fmtTime(m.created)),
      h("td", {}, metricsList(m.metrics)),
      h("td", {}, parityText(m.parity)),
      h("td", {}, `${m.component.name}@${m.component.version}`),
      h("td", {}, m.deployed_on.length ? h("ul", { class: "plain" }, m.deployed_on.map((d) => h("li", {}, `${d.thing} (${d.state || "?"})`))) : "—"),
      h("td", { class: "actions" },
        h("button", { type: "button", disabled: m.approval === "Approved", onclick: () => decide(m, "Approved") }, "Approve"),
        h("button", { type: "button", disabled: m.approval === "Rejected", onclick: () => decide(m, "Rejected") }, "Reject")))));
    if (!data.models.length && !data.note) status.replaceChildren(notice("No model versions registered yet."));
  }
  await refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 5000);
}

// ---------------------------------------------------------------------------------------------
// Devices

async function devicesPage() {
  setTitle("Devices");
  const status = h("div", { id: "devices-status", "aria-live": "polite" });
  const filter = h("input", { id: "device-filter", type: "search", placeholder: "thing, status, version…" });
  const sort = h("select", { id: "device-sort" },
    [["thing", "Thing"], ["status", "Health"], ["last_status", "Last status"], ["model_version", "Model version"], ["p99", "Latency p99"], ["errors", "Errors"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const rows = h("tbody");
  main().replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "Devices"),
      h("span", { class: "toolbar" }, h("label", { for: "device-filter" }, "Filter"), filter,
        h("label", { for: "device-sort" }, "Sort by"), sort)),
    status,
    h("table", { class: "list", id: "devices" },
      h("thead", {}, h("tr", {}, ["Thing", "Health", "Last status", "Model version", "Components", "Deployment", "Requests", "Errors", "p50 ms", "p99 ms", "Telemetry"].map((t) => h("th", {}, t)))),
      rows));
  let devices = [];
  let telemetry = {};

  function key(d) {
    const t = telemetry[d.thing] || {};
    switch (sort.value) {
      case "status": return d.status || "";
      case "last_status": return d.last_status || "";
      case "model_version": return d.model_version || "";
      case "p99": return -((t.latency_ms || {}).p99 || 0);
      case "errors": return -(t.errors || 0);
      default: return d.thing;
    }
  }

  function render() {
    const words = filter.value.trim().toLowerCase();
    const shown = devices.filter((d) => !words || JSON.stringify([d.thing, d.status, d.model_version, d.deployments[0]]).toLowerCase().includes(words))
      .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.thing.localeCompare(b.thing)));
    rows.replaceChildren(...shown.map((d) => {
      const t = telemetry[d.thing] || {};
      const latest = d.deployments[0];
      return h("tr", { "data-thing": d.thing },
        h("th", { scope: "row" }, d.thing),
        h("td", {}, badge(d.status)),
        h("td", {}, fmtTime(d.last_status)),
        h("td", { class: "model-version" }, d.model_version || "—"),
        h("td", {}, h("ul", { class: "plain" }, d.components.map((c) => h("li", {}, `${c.name}@${c.version} `, badge(c.state))))),
        h("td", {}, latest ? [badge(latest.status), " ", latest.name || latest.id, latest.reason ? h("div", { class: "small" }, latest.reason) : ""] : "—"),
        h("td", { class: "num requests" }, t.requests ?? ""),
        h("td", { class: "num errors" }, t.errors ?? ""),
        h("td", { class: "num" }, t.latency_ms ? t.latency_ms.p50 : ""),
        h("td", { class: "num" }, t.latency_ms ? t.latency_ms.p99 : ""),
        h("td", { class: "small telemetry" }, t.received ? `${fmtTime(t.received)}${t.model ? " · model " + (t.model.version || "") : ""}` : "none yet"));
    }));
    status.replaceChildren(devices.length ? "" : notice("No core devices have reported yet."));
  }
  filter.addEventListener("input", render);
  sort.addEventListener("change", render);

  async function refresh() {
    try {
      const data = await api("/api/devices");
      devices = data.devices;
      telemetry = { ...data.telemetry, ...telemetry };
      render();
      if (data.telemetry_problem) status.append(notice(data.telemetry_problem, "error"));
    } catch (err) {
      status.replaceChildren(notice(err.message, "error"));
    }
  }
  await refresh();
  const source = new EventSource("/api/devices/telemetry");
  source.addEventListener("telemetry", (ev) => {
    for (const doc of JSON.parse(ev.data).telemetry) {
      if (doc.thing) telemetry[doc.thing] = { ...doc, received: doc.timestamp || Date.now() / 1000 };
    }
    render();
  });
  setInterval(() => { if (!document.hidden) refresh(); }, 5000);
}

// ---------------------------------------------------------------------------------------------
// MQTT test client

function sessionId() {
  let id = sessionStorage.getItem("mqtt-session");
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("mqtt-session", id);
  }
  return id;
}

async function mqttPage() {
  setTitle("MQTT test client");
  const session = sessionId();
  const status = h("div", { id: "mqtt-status", "aria-live": "polite" });
  const subTopic = h("input", { id: "sub-topic", type: "text", value: "edge/+/inference/result", autocomplete: "off" });
  const subForm = h("form", { "aria-label": "Subscribe to a topic", class: "inline-form" },
    h("label", { for: "sub-topic" }, "Topic"), subTopic, h("button", { type: "submit", class: "primary" }, "Subscribe"));
  const subscriptions = h("ul", { class: "chips", id: "subscriptions", "aria-label": "Subscriptions" });
  const pubTopic = h("input", { id: "pub-topic", type: "text", autocomplete: "off", placeholder: "edge/<thing>/inference/request" });
  const payload = h("textarea", { id: "pub-payload", rows: 5, spellcheck: "false" }, '{\n  "id": "console-1",\n  "rows": [[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, 0.0, 0.02, -0.02]]\n}');
  const pubForm = h("form", { "aria-label": "Publish a message", class: "pub-form" },
    h("label", { for: "pub-topic" }, "Topic"), pubTopic,
    h("label", { for: "pub-payload" }, "Payload"), payload,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Publish")));
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const clear = h("button", { type: "button" }, "Clear");
  const exportButton = h("button", { type: "button" }, "Export");
  const count = h("span", { class: "meta", id: "message-count" }, "0 messages");
  const log = h("ol", { class: "messages", id: "messages", "aria-label": "Messages, newest first" });
  main().replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, "MQTT test client")),
    status,
    h("div", { class: "columns" },
      h("section", { class: "side", "aria-label": "Subscriptions and publishing" },
        h("h2", {}, "Subscribe"), subForm, subscriptions,
        h("h2", {}, "Publish"), pubForm),
      h("section", { class: "wide", "aria-label": "Message log" },
        h("div", { class: "toolbar" }, h("h2", {}, "Messages"), count, pause, clear, exportButton),
        log)));

  const messages = [];
  let paused = false;
  const pending = [];

  function showTopics(topics) {
    subscriptions.replaceChildren(...topics.map((t) => h("li", {}, h("code", {}, t), " ",
      h("button", { type: "button", "aria-label": `Unsubscribe ${t}`, onclick: () => unsubscribe(t) }, "×"))));
    if (!pubTopic.value) {
      const thing = topics.map((t) => t.split("/")).find((p) => p[0] === "edge" && p[1] !== "+");
      if (thing) pubTopic.value = `edge/${thing[1]}/inference/request`;
    }
  }

  function row(m) {
    return h("li", { class: m.verification ? "message verification" : "message", "data-topic": m.topic, "data-request-id": m.request_id || "" },
      h("div", { class: "message-head" },
        h("code", { class: "topic" }, m.topic), h("time", {}, fmtTime(m.received)),
        m.request_id ? h("span", { class: m.verification ? "tag tag-verify" : "tag" }, `${m.verification ? "verification" : "request"} ${m.request_id}`) : ""),
      h("pre", { class: "json" }, m.json !== null ? JSON.stringify(m.json, null, 2) : m.payload));
  }

  function show(batch) {
    messages.push(...batch);
    const nodes = batch.slice().reverse().map(row);
    log.prepend(...nodes);
    while (log.childElementCount > 500) log.lastElementChild.remove();
    count.textContent = `${messages.length} message${messages.length === 1 ? "" : "s"}`;
  }

  async function unsubscribe(topic) {
    try {
      const data = await api("/api/mqtt/unsubscribe", { body: { session, topic } });
      showTopics(data.topics);
    } catch (err) { status.replaceChildren(notice(err.message, "error")); }
  }

  subForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    try {
      const data = await api("/api/mqtt/subscribe", { body: { session, topic: subTopic.value.trim() } });
      showTopics(data.topics);
      status.replaceChildren(notice(`Subscribed to ${subTopic.value.trim()}.`, "ok"));
    } catch (err) { status.replaceChildren(notice(err.message, "error")); }
  });
  pubForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    try {
      JSON.parse(payload.value);
    } catch (err) {
      status.replaceChildren(notice(`The payload is not JSON: ${err.message}`, "error"));
      return;
    }
    try {
      await api("/api/mqtt/publish", { body: { topic: pubTopic.value.trim(), payload: payload.value } });
      status.replaceChildren(notice(`Published to ${pubTopic.value.trim()}.`, "ok"));
    } catch (err) { status.replaceChildren(notice(err.message, "error")); }
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused && pending.length) show(pending.splice(0));
  });
  clear.addEventListener("click", async () => {
    messages.length = 0;
    pending.length = 0;
    log.replaceChildren();
    count.textContent = "0 messages";
    api("/api/mqtt/clear", { body: { session } }).catch(() => {});
  });
  exportButton.addEventListener("click", () => {
    const lines = messages.map((m) => JSON.stringify({ topic: m.topic, received: m.received, payload: m.json ?? m.payload, request_id: m.request_id }));
    download("mqtt-messages.jsonl", lines.join("\n") + (lines.length ? "\n" : ""), "application/jsonl");
  });

  const source = new EventSource(`/api/mqtt/stream?session=${session}`);
  source.addEventListener("topics", (ev) => showTopics(JSON.parse(ev.data).topics));
  source.addEventListener("messages", (ev) => {
    const batch = JSON.parse(ev.data).messages;
    if (paused) pending.push(...batch); else show(batch);
  });
  source.addEventListener("error", (ev) => {
    if (ev.data) status.replaceChildren(notice(JSON.parse(ev.data).error, "error"));
  });
}

// ---------------------------------------------------------------------------------------------
// router

async function route() {
  const path = decodeURIComponent(location.pathname);
  for (const link of document.querySelectorAll("nav a")) {
    const current = path === link.getAttribute("href") || path.startsWith(link.getAttribute("href") + "/");
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  try {
    if (path.startsWith("/executions/")) await executionPage(path.slice("/executions/".length));
    else if (path === "/models") await modelsPage();
    else if (path === "/devices") await devicesPage();
    else if (path === "/monitoring") await monitoringPage();
    else if (path === "/mqtt") await mqttPage();
    else await executionsPage();
  } finally {
    document.body.dataset.readyMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "true";
  }
}

route();
