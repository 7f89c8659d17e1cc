// The viewer page: asks the server (docs/viewer.md) for each method's signing of a sentence or for
// an artifact's sample, and plays every result side by side on one clock.

import {
  activeGloss, advance, decodePose, duration, fit, frameAt, MAX_PITCH, parseState, PARTS, poseBox,
  rotation, spanOnClock, SPEEDS, stateQuery, stepTime, unionBox, VIEWS,
} from "./logic.mjs";
import { drawFrame } from "./draw.mjs";

const $ = (id) => document.getElementById(id);

/** A DOM element: el("div", {class: "x", text: "..."}, child, ...). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

const ICONS = {
  play: '<svg viewBox="0 0 16 16"><path d="M4 2.5v11L13.5 8z"/></svg>',
  pause: '<svg viewBox="0 0 16 16"><path d="M3.5 2.5h3v11h-3zM9.5 2.5h3v11h-3z"/></svg>',
};
const KIND_LABEL = { concat: "dictionary", model: "model", "ground truth": "ground truth", artifact: "artifact" };
const PART_COLOR = { body: "body", hands: "right_hand", face: "face" };
const ARTICULATOR_LABEL = { all: "all", body: "body", right_hand: "R hand", left_hand: "L hand", face: "face" };

const app = {
  spec: null, methods: [], languages: [], artifacts: [],
  selected: new Set(),
  query: null, // {mode: "text", text, lang} or {mode: "sample", artifact, id}
  info: null, // the browsed sample (GET /api/sample)
  results: new Map(), // key -> API result, for the current query
  panels: [],
  rows: [], // the browsed artifact's samples
  t: 0, total: 0, playing: false, speed: 1, loop: true, align: "start", hidden: new Set(),
  cam: { yaw: 0, pitch: 0, zoom: 1 }, view: "front",
  dirty: true, runs: 0,
};

// --- server --------------------------------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  const type = res.headers.get("Content-Type") || "";
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    if (type.includes("json")) msg = (await res.json()).error || msg;
    throw new Error(msg);
  }
  if (type.includes("json")) return res.json();
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  return { blob: await res.blob(), name: name ? name[1] : "download" };
}

// --- messages ------------------------------------------------------------------------------------

function message(text) {
  const m = $("message");
  m.hidden = !text;
  m.textContent = text || "";
}

let toastTimer = null;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 2200);
}

function setBusy(busy) {
  document.body.dataset.ready = busy ? "0" : "1";
  document.body.classList.toggle("busy", busy);
  $("sign").disabled = busy;
  $("sign").textContent = busy ? "Signing…" : "Sign";
}

/** The ready state the page leaves in the DOM for scripts and tests: frames per shown panel. */
function publishReady() {
  const frames = {}, errors = {};
  for (const p of app.panels) {
    if (p.seq) frames[p.key] = p.seq.frames;
    else errors[p.key] = p.error;
  }
  // where each panel's skeleton is drawn, in CSS pixels of the viewport
  const canvases = Object.fromEntries(app.panels.filter((p) => p.seq).map((p) => {
    const r = p.canvas.getBoundingClientRect();
    return [p.key, [r.left, r.top, r.width, r.height].map(Math.round)];
  }));
  document.body.dataset.frames = JSON.stringify(frames);
  document.body.dataset.errors = JSON.stringify(errors);
  document.body.dataset.canvases = JSON.stringify(canvases);
  setBusy(false);
}

// --- the controls --------------------------------------------------------------------------------

/** Every name the "compare" chips (and the URL's ``methods``) choose from: the methods, then the
 * artifacts of methods' outputs (corpora are shown whenever they hold the browsed sample). */
function allNames() {
  return [...app.methods.map((m) => m.name), ...app.artifacts.filter((a) => a.generated).map((a) => a.name)];
}

function chosen(r) {
  if (r.kind === "ground truth") return true;
  if (r.kind === "artifact") return app.selected.has(r.method) || !app.artifacts.find((a) => a.name === r.method)?.generated;
  return app.selected.has(r.method);
}

function chip(name, kind, title, extra = "") {
  const box = el("input", { type: "checkbox", value: name, checked: app.selected.has(name) });
  box.addEventListener("change", () => toggleMethod(name, box.checked));
  return el("label", { class: `chip ${extra}`, title }, box, el("span", { text: name }), el("span", { class: "kind", text: kind }));
}

function buildControls() {
  const methods = $("methods");
  methods.replaceChildren(el("span", { class: "muted small", text: app.methods.length ? "compare" : "no methods loaded" }));
  for (const m of app.methods) {
    methods.append(chip(m.name, KIND_LABEL[m.kind], `${m.label} · ${m.fps} fps${m.langs ? " · " + m.langs.join(", ") : ""}`));
  }
  const outputs = app.artifacts.filter((a) => a.generated);
  if (outputs.length) methods.append(el("span", { class: "muted small sep", text: "outputs" }));
  for (const a of outputs) {
    methods.append(chip(a.name, "artifact", `${a.file}: ${a.samples} samples, shown beside a browsed sample with the same id`, "output"));
  }
  $("lang").replaceChildren(...app.languages.map((l) => el("option", { value: l, text: l })));
  $("speed").replaceChildren(...SPEEDS.map((s) => el("option", { value: s, text: `${s}×` })));
  $("speed").value = String(app.speed);
  $("parts").append(...PARTS.map((p) => el("button", { "data-part": p, class: "part", title: `show / hide the ${p}` },
    el("i", { class: "swatch" }), p)));
  // inline style attributes are refused by the page's CSP: set the swatch colours through the CSSOM
  for (const b of $("parts").querySelectorAll("button")) b.querySelector("i").style.background = app.spec.colors[PART_COLOR[b.dataset.part]];
  syncControls();
}

function syncControls() {
  $("play").innerHTML = app.playing ? ICONS.pause : ICONS.play;
  $("play").setAttribute("aria-label", app.playing ? "pause" : "play");
  $("loop").checked = app.loop;
  $("speed").value = String(app.speed);
  for (const b of $("align").querySelectorAll("button")) b.classList.toggle("on", b.dataset.align === app.align);
  for (const b of $("views").querySelectorAll("button")) b.classList.toggle("on", b.dataset.view === app.view);
  for (const b of $("parts").querySelectorAll("button")) b.classList.toggle("on", !app.hidden.has(b.dataset.part));
}

function setPlaying(on) {
  if (on && app.t >= app.total - 1e-9) app.t = 0;
  app.playing = on && app.total > 0;
  syncControls();
}

function seek(t) {
  app.t = Math.max(0, Math.min(app.total, t));
  app.dirty = true;
}

function setView(name) {
  app.view = name;
  app.cam.yaw = VIEWS[name].yaw;
  app.cam.pitch = VIEWS[name].pitch;
  app.cam.zoom = 1;
  app.dirty = true;
  syncControls();
}

function wireControls() {
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) { message("Type a sentence first."); return; }
    app.query = { mode: "text", text, lang: $("lang").value };
    run();
  });
  $("play").addEventListener("click", () => setPlaying(!app.playing));
  $("start").addEventListener("click", () => { setPlaying(false); seek(0); });
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("scrub").addEventListener("input", () => { setPlaying(false); seek(Number($("scrub").value)); });
  $("speed").addEventListener("change", () => { app.speed = Number($("speed").value); syncControls(); updateUrl(); });
  $("loop").addEventListener("change", () => { app.loop = $("loop").checked; updateUrl(); });
  $("align").addEventListener("click", (e) => {
    const a = e.target.closest("button")?.dataset.align;
    if (!a) return;
    app.align = a;
    layoutPanels();
    syncControls();
    updateUrl();
  });
  $("views").addEventListener("click", (e) => {
    const v = e.target.closest("button")?.dataset.view;
    if (v) { setView(v); updateUrl(); }
  });
  $("parts").addEventListener("click", (e) => {
    const p = e.target.closest("button")?.dataset.part;
    if (!p) return;
    if (app.hidden.has(p)) app.hidden.delete(p); else app.hidden.add(p);
    app.dirty = true;
    syncControls();
    updateUrl();
  });
  $("png").addEventListener("click", exportPng);
  $("pose").addEventListener("click", exportPose);
  $("share").addEventListener("click", share);
  document.addEventListener("keydown", (e) => {
    const tag = e.target.tagName;
    if ((tag === "INPUT" && e.target.type !== "range" && e.target.type !== "checkbox") || tag === "SELECT" || tag === "TEXTAREA") return;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      e.preventDefault();
      step((e.key === "ArrowLeft" ? -1 : 1) * (e.shiftKey ? 10 : 1));
    } else if (e.key === " ") {
      e.preventDefault();
      // a focused button or checkbox would also take the Space (on key up): play/pause only
      if (e.target !== document.body && e.target.blur) e.target.blur();
      setPlaying(!app.playing);
    } else if (e.key === "Home") {
      seek(0);
    } else if (e.key === "End") {
      seek(app.total);
    }
  });
}

function step(dir) {
  setPlaying(false);
  const seqs = app.panels.filter((p) => p.seq).map((p) => p.seq);
  seek(stepTime(app.t, seqs, app.align, app.total, dir));
}

// --- the artifact browser ------------------------------------------------------------------------

function buildBrowser() {
  if (!app.artifacts.length) return;
  $("browser").hidden = false;
  $("empty-browse").hidden = false;
  $("artifact").replaceChildren(...app.artifacts.map((a) => el("option", { value: a.name, text: `${a.name} (${a.samples})` })));
  const first = app.artifacts.find((a) => !a.generated) || app.artifacts[0];
  $("artifact").value = first.name;
  $("artifact").addEventListener("change", () => loadRows($("artifact").value));
  for (const id of ["split", "slang"]) $(id).addEventListener("change", listRows);
  let timer = null;
  $("filter").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(listRows, 120); });
  $("samples").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-id]");
    if (!b) return;
    app.query = { mode: "sample", artifact: $("artifact").value, id: b.dataset.id };
    run();
  });
}

async function loadRows(name) {
  const a = app.artifacts.find((x) => x.name === name);
  $("split").replaceChildren(el("option", { value: "", text: "all splits" }), ...a.splits.map((s) => el("option", { value: s, text: s })));
  $("slang").replaceChildren(el("option", { value: "", text: "all languages" }), ...a.langs.map((s) => el("option", { value: s, text: s })));
  if (a.splits.includes("test")) $("split").value = "test"; // what methods are compared on
  app.rows = (await api(`/api/samples?artifact=${encodeURIComponent(name)}`)).samples;
  listRows();
}

const LIST_MAX = 1000;

function listRows() {
  const split = $("split").value, lang = $("slang").value, q = $("filter").value.trim().toLowerCase();
  const rows = app.rows.filter((r) => (!split || r.split === split) && (!lang || r.lang === lang)
    && (!q || r.id.toLowerCase().includes(q) || r.text.toLowerCase().includes(q)));
  const current = app.query?.mode === "sample" ? app.query.id : null;
  $("samples").replaceChildren(...rows.slice(0, LIST_MAX).map((r) => el("li", {},
    el("button", { "data-id": r.id, class: r.id === current ? "current" : null, title: `${r.id} · ${r.split} · ${r.lang} · ${r.frames} frames` },
      el("span", { class: "sid", text: r.id }), el("span", { class: "stext", text: r.text || "(no text)" })))));
  $("count").textContent = `${rows.length} of ${app.rows.length} samples` + (rows.length > LIST_MAX ? ` (first ${LIST_MAX} listed)` : "");
}

// --- asking for results --------------------------------------------------------------------------

/** Display order: ground truth (always shown), the chosen artifacts, then the chosen methods in the
 * server's order. */
function orderedKeys() {
  const arts = [...app.results.values()].filter((r) => r.kind !== "concat" && r.kind !== "model" && chosen(r));
  arts.sort((a, b) => (a.kind !== "ground truth") - (b.kind !== "ground truth"));
  const methods = app.methods.map((m) => m.name).filter((n) => app.results.has(n) && chosen(app.results.get(n)));
  return [...arts.map((r) => r.method), ...methods];
}

function queryText() {
  if (!app.query) return null;
  if (app.query.mode === "text") return { text: app.query.text, lang: app.query.lang, ref: null };
  if (!app.info || !app.info.text) return null;
  return { text: app.info.text, lang: app.info.lang, ref: app.info.reference ? { artifact: app.info.reference, id: app.info.id } : null };
}

async function generate(names) {
  const q = queryText();
  if (!q || !names.length) return [];
  const body = { text: q.text, lang: q.lang, methods: names };
  if (q.ref) body.ref = q.ref;
  return (await api("/api/generate", body)).results;
}

/** Ask for everything the current query shows, then show it. */
async function run(initialT = null) {
  const token = ++app.runs;
  setBusy(true);
  message("");
  const results = new Map();
  let info = null;
  try {
    if (app.query.mode === "sample") {
      info = await api(`/api/sample?artifact=${encodeURIComponent(app.query.artifact)}&id=${encodeURIComponent(app.query.id)}`);
      for (const r of info.results) results.set(r.method, r);
      $("text").value = info.text;
      if (app.languages.includes(info.lang)) $("lang").value = info.lang;
    }
    app.info = info;
    for (const r of await generate(app.methods.map((m) => m.name).filter((n) => app.selected.has(n)))) results.set(r.method, r);
  } catch (e) {
    message(e.message);
  }
  if (token !== app.runs) return; // a newer request took over
  app.results = results;
  document.body.classList.toggle("browsing", app.query.mode === "sample");
  showInfo();
  setPanels();
  if (initialT !== null) { seek(initialT); setPlaying(false); } else { seek(0); setPlaying(true); }
  updateUrl();
  if (app.query.mode === "sample") listRows();
  publishReady();
}

async function toggleMethod(name, on) {
  if (on) app.selected.add(name); else app.selected.delete(name);
  if (on && app.query && !app.results.has(name) && app.methods.some((m) => m.name === name)) {
    setBusy(true);
    try {
      for (const r of await generate([name])) app.results.set(r.method, r);
    } catch (e) {
      message(e.message);
    }
  }
  setPanels();
  updateUrl();
  publishReady();
}

// --- the sample card -----------------------------------------------------------------------------

function showInfo() {
  const box = $("info"), info = app.info;
  box.hidden = !info;
  if (!info) return;
  const ref = info.results.find((r) => r.kind === "ground truth");
  box.replaceChildren(...[
    el("div", { class: "info-head" }, el("span", { class: "sid", text: info.id }),
      el("span", { class: "tag", text: info.split }), el("span", { class: "tag", text: info.lang }),
      info.reference ? el("span", { class: "muted small", text: `ground truth from ${info.reference}` })
        : el("span", { class: "muted small", text: "no ground truth among the artifacts: not scored" })),
    el("p", { class: "sentence", text: info.text || "(no text)" }),
    info.glosses.length ? el("p", { class: "glosses" }, el("span", { class: "label", text: "glosses" }), info.glosses.join(" ")) : null,
    ref && ref.translation ? el("p", { class: "translation" }, el("span", { class: "label", text: "back-translation" }), ref.translation) : null,
  ].filter(Boolean));
}

// --- panels --------------------------------------------------------------------------------------

function fmt(x, digits = 3) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}

function humanize(key) {
  return key.replace(/_/g, " ");
}

/** A method's report (any keys) as rows: lists as chips, pairs as "word → GLOSS", numbers as text. */
function reportRows(report) {
  const rows = [];
  for (const [key, value] of Object.entries(report || {})) {
    let body;
    const warn = key === "unknown";
    if (Array.isArray(value)) {
      if (!value.length) continue;
      body = el("span", { class: "chips" }, value.map((v) => el("span", { class: warn ? "chip-s warn" : "chip-s",
        text: Array.isArray(v) ? v.join(" → ") : typeof v === "number" ? fmt(v, Number.isInteger(v) ? 0 : 2)
          : typeof v === "object" && v !== null ? Object.entries(v).map(([a, b]) => `${a}: ${b}`).join(", ") : String(v) })));
    } else if (value && typeof value === "object") {
      body = el("span", { class: "chips" }, Object.entries(value).map(([a, b]) => el("span", { class: "chip-s", text: `${a}: ${typeof b === "number" ? fmt(b, 2) : b}` })));
    } else {
      body = el("span", { text: typeof value === "number" ? fmt(value, Number.isInteger(value) ? 0 : 3) : String(value) });
    }
    rows.push(el("div", { class: "row" }, el("span", { class: "label", text: humanize(key) }), body));
  }
  return rows;
}

function scoreRows(r) {
  if (r.scores_note) return [el("div", { class: "row" }, el("span", { class: "label", text: "scores" }), el("span", { class: "muted", text: r.scores_note }))];
  if (!r.scores) return [];
  const mje = r.scores.dtw_mje;
  return [el("div", { class: "row scores", title: `DTW-MJE against ${r.reference} (slp's protocol; lower is better)` },
    el("span", { class: "label", text: "DTW-MJE" }),
    el("span", { class: "chips" }, Object.entries(mje).map(([k, v]) => el("span", { class: k === "all" ? "score main" : "score" },
      el("small", { text: ARTICULATOR_LABEL[k] || k }), fmt(v))),
      el("span", { class: "score" }, el("small", { text: "frames" }), `×${fmt(r.scores.frames_ratio, 2)}`)))];
}

function makePanel(r) {
  const p = { key: r.method, result: r, seq: null, error: r.error || null, lastDrawn: null };
  const meta = [];
  if (!p.error) {
    try {
      p.seq = decodePose(r);
      p.box = poseBox(p.seq);
      meta.push(`${p.seq.frames} frames`, `${r.fps} fps`, `${(p.seq.frames / r.fps).toFixed(2)} s`);
    } catch (e) {
      p.error = e.message;
    }
  }
  if (r.ms !== undefined && r.ms !== null) meta.push(`${r.ms < 10 ? r.ms.toFixed(1) : Math.round(r.ms)} ms`);
  p.canvas = el("canvas", { "aria-label": `${r.method} skeleton` });
  p.overlay = el("div", { class: "overlay" });
  p.track = el("div", { class: "track", title: "click to seek" });
  p.playhead = el("div", { class: "playhead" });
  const details = [];
  if (r.translation) details.push(el("div", { class: "row" }, el("span", { class: "label", text: "back-translation" }), el("span", { text: r.translation })));
  details.push(...scoreRows(r), ...reportRows(r.report));
  if (r.glosses?.length && !r.gloss_spans?.length) details.push(el("div", { class: "row" }, el("span", { class: "label", text: "glosses" }), el("span", { text: r.glosses.join(" ") })));
  p.root = el("article", { class: `panel kind-${(r.kind || "").replace(/\s+/g, "-")}`, "data-method": r.method },
    el("header", {}, el("div", { class: "title" }, el("h2", { text: r.method, title: r.method }),
      el("span", { class: "kind", text: KIND_LABEL[r.kind] || r.kind || "" })),
      el("div", { class: "meta", text: meta.join(" · ") || " " })),
    p.error ? el("div", { class: "panel-error", text: p.error })
      : [el("div", { class: "stage" }, p.canvas, p.overlay),
        el("div", { class: "timeline" }, p.track, p.playhead)],
    details.length ? el("div", { class: "details" }, details) : null);
  if (p.seq) {
    wireOrbit(p.canvas);
    p.track.addEventListener("click", (e) => {
      const box = p.track.getBoundingClientRect();
      setPlaying(false);
      seek(((e.clientX - box.left) / box.width) * app.total);
    });
  }
  return p;
}

function setPanels() {
  const keys = orderedKeys();
  app.panels = keys.map((k) => makePanel(app.results.get(k)));
  $("panels").replaceChildren(...app.panels.map((p) => p.root));
  $("empty").hidden = app.panels.length > 0 || !!app.query;
  if (app.query && !app.panels.length && !$("message").textContent) message("Nothing to show: tick a method above.");
  // one fit per normalization (panels in the same units share the scale), else one per panel
  const groups = new Map();
  for (const p of app.panels.filter((x) => x.seq)) {
    p.group = p.result.normalization || `raw:${p.key}`;
    groups.set(p.group, [...(groups.get(p.group) || []), p.box]);
  }
  for (const p of app.panels) if (p.seq) p.groupBox = unionBox(groups.get(p.group));
  app.total = duration(app.panels.filter((p) => p.seq).map((p) => p.seq));
  $("scrub").max = String(app.total || 1);
  layoutPanels();
  resizeObserver.disconnect();
  for (const p of app.panels) if (p.seq) resizeObserver.observe(p.canvas);
}

/** Gloss boxes on each panel's timeline, placed on the shared clock for the current alignment. */
function layoutPanels() {
  for (const p of app.panels) {
    if (!p.seq) continue;
    const spans = p.result.gloss_spans || [], glosses = p.result.glosses || [];
    const items = spans.map((span, i) => {
      const [l, r] = spanOnClock(span, p.seq, app.align, app.total);
      const g = el("div", { class: "gloss", title: `${glosses[i] ?? ""}  frames ${span[0]}–${span[1] - 1}`, text: glosses[i] ?? "" });
      g.style.left = `${100 * l}%`;
      g.style.width = `${100 * Math.max(0, r - l)}%`;
      return g;
    });
    const end = app.align === "stretch" ? 1 : p.seq.frames / p.seq.fps / app.total;
    const after = el("div", { class: "after", title: "this sequence has ended (align: stretch plays all to the end)" });
    after.style.left = `${100 * end}%`;
    p.glossEls = items;
    p.track.replaceChildren(...items, end < 0.999 ? after : "");
    if (!spans.length) p.track.append(el("span", { class: "no-glosses", text: glosses.length ? "glosses without timing" : "no gloss timing" }));
  }
  app.dirty = true;
}

// --- drawing -------------------------------------------------------------------------------------

const resizeObserver = new ResizeObserver(() => { app.dirty = true; for (const p of app.panels) p.lastDrawn = null; });

function camera(p, width, height) {
  const { center, scale } = fit(p.groupBox, width, height);
  return { rot: rotation(app.cam.yaw, app.cam.pitch), center, scale: scale * app.cam.zoom, width, height };
}

function drawPanel(p, f, force) {
  const c = p.canvas, w = c.clientWidth, h = c.clientHeight, dpr = window.devicePixelRatio || 1;
  if (!w || !h) return;
  const key = `${f}|${w}x${h}|${app.cam.yaw}|${app.cam.pitch}|${app.cam.zoom}|${[...app.hidden].join()}`;
  if (!force && key === p.lastDrawn) return;
  p.lastDrawn = key;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  drawFrame(ctx, p.seq, f, camera(p, w, h), app.spec, app.hidden);
}

function render() {
  for (const p of app.panels) {
    if (!p.seq) continue;
    const f = frameAt(app.t, p.seq, app.align, app.total);
    drawPanel(p, f, false);
    const g = activeGloss(p.result.gloss_spans, f);
    p.glossEls?.forEach((e, i) => e.classList.toggle("active", i === g));
    const ended = app.align === "start" && app.t * p.seq.fps >= p.seq.frames;
    p.overlay.textContent = `${f + 1} / ${p.seq.frames}${g >= 0 ? "  " + (p.result.glosses[g] ?? "") : ""}${ended ? "  (ended)" : ""}`;
    p.playhead.style.left = `${app.total ? (100 * app.t) / app.total : 0}%`;
  }
  $("scrub").value = String(app.t);
  $("clock").textContent = `${app.t.toFixed(2)} / ${app.total.toFixed(2)} s`;
}

let last = null;
function tick(now) {
  const dt = last === null ? 0 : Math.min(0.25, (now - last) / 1000);
  last = now;
  if (app.playing) {
    const a = advance(app.t, dt * app.speed, app.total, app.loop);
    app.t = a.t;
    if (a.ended) setPlaying(false);
    app.dirty = true;
  }
  if (app.dirty) {
    app.dirty = false;
    render();
  }
  requestAnimationFrame(tick);
}

function wireOrbit(canvas) {
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    app.cam.yaw -= (e.clientX - drag.x) * 0.01;
    app.cam.pitch = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, app.cam.pitch + (e.clientY - drag.y) * 0.01));
    drag = { x: e.clientX, y: e.clientY };
    app.view = "";
    app.dirty = true;
    syncControls();
  });
  const end = () => { drag = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    app.cam.zoom = Math.max(0.3, Math.min(8, app.cam.zoom * Math.exp(-e.deltaY * 0.0015)));
    app.dirty = true;
  }, { passive: false });
  canvas.addEventListener("dblclick", () => setView(app.view || "front"));
}

// --- export and sharing --------------------------------------------------------------------------

function download(href, name) {
  const a = el("a", { href, download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

/** The current frame of every panel side by side, each under its method's name. */
function exportPng() {
  const shown = app.panels.filter((p) => p.seq && p.canvas.width);
  if (!shown.length) { toast("nothing to export"); return; }
  const dpr = window.devicePixelRatio || 1, head = Math.round(34 * dpr), gap = Math.round(8 * dpr);
  const w = shown.reduce((s, p) => s + p.canvas.width + gap, gap), h = Math.max(...shown.map((p) => p.canvas.height)) + head + gap;
  const out = el("canvas", { width: w, height: h }), ctx = out.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, w, h);
  let x = gap;
  for (const p of shown) {
    const f = frameAt(app.t, p.seq, app.align, app.total), g = activeGloss(p.result.gloss_spans, f);
    ctx.fillStyle = "#1f2430";
    ctx.font = `600 ${Math.round(14 * dpr)}px system-ui, sans-serif`;
    ctx.fillText(p.key, x, Math.round(16 * dpr));
    ctx.fillStyle = "#6b7280";
    ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`;
    ctx.fillText(`frame ${f + 1}/${p.seq.frames}${g >= 0 ? " · " + p.result.glosses[g] : ""}`, x, Math.round(29 * dpr));
    ctx.drawImage(p.canvas, x, head);
    x += p.canvas.width + gap;
  }
  download(out.toDataURL("image/png"), `slp-view-${app.t.toFixed(2)}s.png`);
}

async function exportPose() {
  const shown = app.panels.filter((p) => p.seq);
  if (!shown.length) { toast("nothing to export"); return; }
  try {
    const { blob, name } = await api("/api/pose", { sequences: shown.map((p) => ({ name: p.key, fps: p.result.fps, shape: p.result.shape, pose: p.result.pose })) });
    const url = URL.createObjectURL(blob);
    download(url, name);
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    message(e.message);
  }
}

function currentState(withTime) {
  const q = app.query || {};
  const all = allNames().every((n) => app.selected.has(n));
  return {
    text: q.mode === "text" ? q.text : "", lang: q.mode === "text" ? q.lang : "",
    artifact: q.mode === "sample" ? q.artifact : "", id: q.mode === "sample" ? q.id : "",
    methods: all ? null : [...app.selected], align: app.align, speed: app.speed, loop: app.loop,
    view: app.view || "front", t: withTime ? app.t : null, hide: [...app.hidden],
  };
}

function updateUrl() {
  history.replaceState(null, "", location.pathname + stateQuery(currentState(false)));
}

async function share() {
  const url = location.origin + location.pathname + stateQuery(currentState(!app.playing));
  try {
    await navigator.clipboard.writeText(url);
    toast("link copied");
  } catch {
    window.prompt("Link to this view:", url);
  }
}

// --- start ---------------------------------------------------------------------------------------

async function main() {
  const state = parseState(location.search);
  try {
    const [spec, methods, artifacts] = await Promise.all([api("/api/skeleton"), api("/api/methods"), api("/api/artifacts")]);
    app.spec = spec;
    app.methods = methods.methods;
    app.languages = methods.languages;
    app.artifacts = artifacts.artifacts;
  } catch (e) {
    message(`cannot reach the slp view server: ${e.message}`);
    publishReady();
    return;
  }
  const names = allNames();
  app.selected = new Set(state.methods ? state.methods.filter((m) => names.includes(m)) : names);
  Object.assign(app, { align: state.align, speed: state.speed, loop: state.loop, hidden: new Set(state.hide) });
  buildControls();
  wireControls();
  setView(state.view);
  buildBrowser();
  if (state.lang && app.languages.includes(state.lang)) $("lang").value = state.lang;
  requestAnimationFrame(tick);
  if (app.artifacts.length) {
    const art = app.artifacts.some((a) => a.name === state.artifact) ? state.artifact : $("artifact").value;
    $("artifact").value = art;
    try { await loadRows(art); } catch (e) { message(e.message); }
  }
  if (state.methods) {
    const unknown = state.methods.filter((m) => !names.includes(m));
    if (unknown.length) toast(`not in this viewer: ${unknown.join(", ")}`);
  }
  if (state.artifact && state.id) app.query = { mode: "sample", artifact: state.artifact, id: state.id };
  else if (state.text) {
    $("text").value = state.text;
    app.query = { mode: "text", text: state.text, lang: state.lang || $("lang").value };
  }
  if (app.query) await run(state.t);
  else publishReady();
}

main();
