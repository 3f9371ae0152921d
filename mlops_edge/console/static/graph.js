/* The execution graph: layout (dagre, a pure function from graph to boxes and points) and
 * drawing (SVG), kept apart. The graph itself comes from the server (mlops_edge/console/graph.py):
 * nodes, typed edges (next, choice, default, catch, retry) and clusters for Map/Parallel. */
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_H = 30;
const CHAR_W = 7.2;

/* Layout: {nodes, edges, clusters} -> {width, height, nodes: [{id, x, y, width, height, ...}],
 * edges: [{source, target, kind, label, points, labelPos}], clusters: [{id, label, x, y, width, height}]}.
 * x, y are centres, as dagre gives them. */
function layoutGraph(graph, options) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 34, edgesep: 8, marginx: 12, marginy: 12, ...(options || {}) });
  g.setDefaultEdgeLabel(() => ({}));
  for (const cluster of graph.clusters) {
    g.setNode(cluster.id, { label: cluster.label, clusterLabelPos: "top", paddingTop: 18 });
  }
  for (const cluster of graph.clusters) {
    if (cluster.parent) g.setParent(cluster.id, cluster.parent);
  }
  for (const node of graph.nodes) {
    const width = Math.max(70, Math.round(node.label.length * CHAR_W + 26));
    g.setNode(node.id, { width, height: NODE_H });
    if (node.parent) g.setParent(node.id, node.parent);
  }
  // Retry self-loops and catches are not laid out: a retry is drawn as a loop on its node's
  // right side, a catch as a dashed line to its handler over the laid-out graph (thirteen catches
  // into one Fail state would otherwise decide the whole layout and double its width).
  const laidEdges = graph.edges.filter((edge) => edge.kind !== "retry" && edge.kind !== "catch");
  // ...except the first catch into a handler nothing else leads to (Rollback): it places it
  const reached = new Set(laidEdges.map((e) => e.target));
  for (const edge of graph.edges) {
    if (edge.kind === "catch" && !reached.has(edge.target) && edge.target !== graph.start) {
      reached.add(edge.target);
      laidEdges.push({ ...edge, kind: "catch", laid: true });
    }
  }
  laidEdges.forEach((edge, i) => {
    // Only choice conditions take room in the layout; a catch's errors are in its tooltip and
    // the state's details (thirteen "any error" labels would double the graph's width).
    const shown = edge.kind === "choice" ? edgeLabel(edge) : "";
    g.setEdge(edge.source, edge.target, {
      width: shown ? shown.length * 5.6 + 4 : 0,
      height: shown ? 12 : 0,
      labelpos: "c",
      minlen: 1,
      weight: edge.kind === "catch" ? 0 : edge.kind === "next" || edge.kind === "choice" ? 4 : 1,
    }, `${edge.kind}-${i}`);
  });
  dagre.layout(g);
  const clusterIds = new Set(graph.clusters.map((c) => c.id));
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const out = { width: g.graph().width, height: g.graph().height, nodes: [], edges: [], clusters: [] };
  for (const id of g.nodes()) {
    const box = g.node(id);
    if (clusterIds.has(id)) {
      out.clusters.push({ id, label: box.label, x: box.x, y: box.y, width: box.width, height: box.height });
    } else {
      out.nodes.push({ ...byId.get(id), x: box.x, y: box.y, width: box.width, height: box.height });
    }
  }
  laidEdges.forEach((edge, i) => {
    const laid = g.edge({ v: edge.source, w: edge.target, name: `${edge.kind}-${i}` });
    out.edges.push({ ...edge, points: laid.points, labelPos: { x: laid.x, y: laid.y } });
  });
  const laidCatches = new Set(laidEdges.filter((e) => e.laid).map((e) => `${e.source}>${e.target}`));
  for (const edge of graph.edges.filter((e) => e.kind === "catch" && !laidCatches.has(`${e.source}>${e.target}`))) {
    const from = g.node(edge.source);
    const to = g.node(edge.target);
    const side = to.x >= from.x ? 1 : -1;
    const start = { x: from.x + (side * from.width) / 2, y: from.y };
    const end = { x: to.x, y: to.y - to.height / 2 };
    if (to.y <= from.y) end.y = to.y + to.height / 2;
    const bend = { x: start.x + side * 24, y: (start.y + end.y) / 2 };
    out.edges.push({ ...edge, points: [start, bend, end], labelPos: null });
  }
  for (const edge of graph.edges.filter((e) => e.kind === "retry")) {
    const box = g.node(edge.source);
    const x = box.x + box.width / 2;
    const y = box.y;
    // a loop out of the right side and back in, as the AWS console marks a retrying state
    out.edges.push({ ...edge, points: [{ x, y: y - 6 }, { x: x + 16, y: y - 12 }, { x: x + 16, y: y + 12 }, { x, y: y + 6 }], labelPos: null });
  }
  return out;
}

function edgeLabel(edge) {
  if (edge.kind !== "choice") return "";
  return edge.label.length > 30 ? edge.label.slice(0, 29) + "…" : edge.label;
}

function svg(tag, attrs, parent) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function pathOf(points) {
  if (!points.length) return "";
  let d = `M${points[0].x},${points[0].y}`;
  if (points.length === 2) return d + ` L${points[1].x},${points[1].y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i];
    const n = points[i + 1];
    const mx = (p.x + n.x) / 2;
    const my = (p.y + n.y) / 2;
    d += ` Q${p.x},${p.y} ${i === points.length - 2 ? n.x : mx},${i === points.length - 2 ? n.y : my}`;
  }
  return d;
}

/* Drawing: an <svg> with one focusable <g> per state (data-state = its name). onSelect(name) is
 * called on click, Enter or Space. Returns {setStatus(name, status, title)}. */
function drawGraph(container, layout, onSelect) {
  container.textContent = "";
  const root = svg("svg", {
    width: Math.ceil(layout.width), height: Math.ceil(layout.height),
    viewBox: `0 0 ${Math.ceil(layout.width)} ${Math.ceil(layout.height)}`,
    role: "group", "aria-label": "State machine graph", class: "graph",
  }, container);
  const defs = svg("defs", {}, root);
  for (const kind of ["next", "choice", "default", "catch", "retry", "branch"]) {
    const marker = svg("marker", {
      id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
    }, defs);
    svg("path", { d: "M0,0 L10,5 L0,10 z", class: `arrow arrow-${kind}` }, marker);
  }
  for (const c of layout.clusters) {
    const group = svg("g", { class: "cluster" }, root);
    svg("rect", { x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height, rx: 6 }, group);
    const label = svg("text", { x: c.x - c.width / 2 + 8, y: c.y - c.height / 2 + 13, class: "cluster-label" }, group);
    label.textContent = c.label;
  }
  const edgeLayer = svg("g", { class: "edges" }, root);
  for (const e of layout.edges) {
    const group = svg("g", { class: `edge edge-${e.kind}`, "data-source": e.source, "data-target": e.target }, edgeLayer);
    const path = svg("path", { d: pathOf(e.points), "marker-end": `url(#arrow-${e.kind})` }, group);
    const title = svg("title", {}, path);
    title.textContent = `${e.source} → ${e.target}: ${e.kind}${e.label ? " (" + e.label + ")" : ""}`;
    const shown = e.kind === "retry" ? "" : edgeLabel(e);
    if (shown) {
      const text = svg("text", { x: e.labelPos.x, y: e.labelPos.y + 4, class: "edge-label", "text-anchor": "middle" }, group);
      text.textContent = shown;
    }
  }
  const nodes = new Map();
  for (const n of layout.nodes) {
    const group = svg("g", {
      class: `node type-${n.type} status-none`, "data-state": n.id, tabindex: 0, role: "button",
      "aria-label": `${n.id} (${n.type}): not run`,
    }, root);
    const x = n.x - n.width / 2;
    const y = n.y - n.height / 2;
    const rx = n.type === "Choice" ? 15 : n.type === "Succeed" || n.type === "Fail" ? 15 : 4;
    svg("rect", { x, y, width: n.width, height: n.height, rx }, group);
    const text = svg("text", { x: n.x, y: n.y + 4, "text-anchor": "middle" }, group);
    text.textContent = n.label;
    const title = svg("title", {}, group);
    title.textContent = `${n.id} (${n.type})${n.retry ? "\nretries: " + n.retry.join("; ") : ""}`;
    const select = () => onSelect(n.id);
    group.addEventListener("click", select);
    group.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(); }
    });
    nodes.set(n.id, { group, node: n });
  }
  return {
    root,
    zoom(scale) {
      root.setAttribute("width", Math.ceil(layout.width * scale));
      root.setAttribute("height", Math.ceil(layout.height * scale));
    },
    setStatus(name, status, detail) {
      const entry = nodes.get(name);
      if (!entry) return;
      const cls = entry.group.getAttribute("class").replace(/status-\S+/, `status-${status}`);
      entry.group.setAttribute("class", cls);
      entry.group.setAttribute("aria-label", `${name} (${entry.node.type}): ${status}${detail ? ", " + detail : ""}`);
    },
    select(name) {
      for (const [id, entry] of nodes) entry.group.classList.toggle("selected", id === name);
    },
  };
}

window.consoleGraph = { layoutGraph, drawGraph };
