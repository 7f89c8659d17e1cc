// The pure logic of the viewer page, without the DOM (tested with `node --test`): decoding the
// API's poses, the one clock all panels share (time -> frame for each alignment), the camera
// (orbit, projection, fit) and the page state in the URL.

// --- poses ---------------------------------------------------------------------------------------

/** Base64 of little-endian float32 bytes -> Float32Array (NaN, the missing joints, kept). */
export function decodeFloat32(b64) {
  const bin = atob(b64);
  if (bin.length % 4) throw new Error(`pose data has ${bin.length} bytes, not a multiple of 4`);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bin.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true); // true: little-endian
  return out;
}

/** One API result ({shape: [T, K, 3], pose, fps}) -> {frames, points, fps, data}. */
export function decodePose(result) {
  const [frames, points, dims] = result.shape;
  const data = decodeFloat32(result.pose);
  if (dims !== 3 || data.length !== frames * points * 3) {
    throw new Error(`${result.method}: pose has ${data.length} values, shape ${result.shape} needs ${frames * points * dims}`);
  }
  return { frames, points, fps: result.fps, data };
}

/** Joint j of frame f as [x, y, z] (NaN where missing). */
export function joint(seq, f, j) {
  const o = (f * seq.points + j) * 3;
  return [seq.data[o], seq.data[o + 1], seq.data[o + 2]];
}

// --- the shared clock ------------------------------------------------------------------------------
// "start": every sequence plays at its own frame rate from time 0 and holds its last frame when it
// ends before the others. "stretch": every sequence is stretched to the longest one's duration.

export const ALIGNMENTS = ["start", "stretch"];
const EPS = 1e-6; // t = k / fps must land on frame k despite rounding

/** Seconds the shared clock runs: the longest sequence's duration (0 without sequences). */
export function duration(seqs) {
  return seqs.reduce((m, s) => Math.max(m, s.frames / s.fps), 0);
}

/** The frame of ``seq`` shown at time ``t`` (seconds) of a clock of ``total`` seconds. */
export function frameAt(t, seq, align, total) {
  const last = seq.frames - 1;
  let f;
  if (align === "stretch") f = total > 0 ? Math.floor((t / total) * seq.frames + EPS) : 0;
  else f = Math.floor(t * seq.fps + EPS);
  return Math.max(0, Math.min(last, f));
}

/** Where frames [start, end) of ``seq`` lie on the clock, as fractions [left, right] of ``total``. */
export function spanOnClock([start, end], seq, align, total) {
  if (!(total > 0)) return [0, 0];
  const scale = align === "stretch" ? 1 / seq.frames : 1 / (seq.fps * total);
  return [Math.max(0, start * scale), Math.min(1, end * scale)];
}

/** The time one frame step (``dir`` = +1 or -1 frames) away from ``t``, on the finest frame grid:
 * the highest frame rate ("start") or the longest sequence's frames ("stretch"). */
export function stepTime(t, seqs, align, total, dir) {
  if (!seqs.length || !(total > 0)) return 0;
  const rate = align === "stretch" ? Math.max(...seqs.map((s) => s.frames)) / total : Math.max(...seqs.map((s) => s.fps));
  const k = Math.round(t * rate) + dir;
  return Math.max(0, Math.min(total, k / rate));
}

/** Advance the clock by ``dt`` seconds: {t, ended}. With ``loop`` it wraps to 0 at the end; without,
 * it stops there (ended). */
export function advance(t, dt, total, loop) {
  if (!(total > 0)) return { t: 0, ended: true };
  const next = t + dt;
  if (next < total) return { t: next, ended: false };
  return loop ? { t: next % total, ended: false } : { t: total, ended: true };
}

/** Index of the gloss whose span holds ``frame`` (-1: none). */
export function activeGloss(spans, frame) {
  if (!spans) return -1;
  return spans.findIndex(([a, b]) => frame >= a && frame < b);
}

// --- camera ----------------------------------------------------------------------------------------
// Pose coordinates: x right, y down (image and normalized poses alike), z away from the camera.
// The camera orbits the pose box's centre: yaw about the vertical axis, then pitch about the
// horizontal one; the projection is orthographic (the pose units have no focal length).

export const VIEWS = { front: { yaw: 0, pitch: 0 }, side: { yaw: Math.PI / 2, pitch: 0 }, top: { yaw: 0, pitch: Math.PI / 2 } };
export const MAX_PITCH = Math.PI / 2;

/** Row-major 3x3 rotation: pitch (about x) after yaw (about y). */
export function rotation(yaw, pitch) {
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  // Ry = [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]; Rx = [[1, 0, 0], [0, cp, -sp], [0, sp, cp]]; R = Rx Ry
  return [cy, 0, sy, sp * sy, cp, -sp * cy, -cp * sy, sp, cp * cy];
}

/** Screen position [sx, sy] and depth of pose point (x, y, z) for a camera
 * {rot, center: [cx, cy, cz], scale, width, height}; NaN in, NaN out. */
export function project(x, y, z, cam) {
  const r = cam.rot, dx = x - cam.center[0], dy = y - cam.center[1], dz = z - cam.center[2];
  const px = r[0] * dx + r[1] * dy + r[2] * dz;
  const py = r[3] * dx + r[4] * dy + r[5] * dz;
  const pz = r[6] * dx + r[7] * dy + r[8] * dz;
  return [cam.width / 2 + px * cam.scale, cam.height / 2 + py * cam.scale, pz];
}

function quantile(sorted, q) {
  const i = (sorted.length - 1) * q, lo = Math.floor(i), hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

/** The box {lo, hi} of a sequence's present joints, as slp render fits it: outliers beyond half the
 * 1-99 percentile range past either percentile are ignored (a stray detection must not shrink the
 * signer). null when no joint is present. */
export function poseBox(seq) {
  const n = seq.frames * seq.points, axes = [[], [], []];
  for (let i = 0; i < n; i++) {
    const x = seq.data[3 * i], y = seq.data[3 * i + 1], z = seq.data[3 * i + 2];
    if (Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z)) { axes[0].push(x); axes[1].push(y); axes[2].push(z); }
  }
  if (!axes[0].length) return null;
  const fences = axes.map((a) => {
    const s = Float64Array.from(a).sort(), q1 = quantile(s, 0.01), q99 = quantile(s, 0.99), pad = (q99 - q1) * 0.5;
    return [q1 - pad, q99 + pad];
  });
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < axes[0].length; i++) {
    const p = [axes[0][i], axes[1][i], axes[2][i]];
    if (p.every((v, a) => v >= fences[a][0] && v <= fences[a][1])) {
      for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a], p[a]); hi[a] = Math.max(hi[a], p[a]); }
    }
  }
  return { lo, hi };
}

/** The smallest box holding every box given (null ones skipped). */
export function unionBox(boxes) {
  const real = boxes.filter(Boolean);
  if (!real.length) return null;
  return { lo: [0, 1, 2].map((a) => Math.min(...real.map((b) => b.lo[a]))), hi: [0, 1, 2].map((a) => Math.max(...real.map((b) => b.hi[a]))) };
}

/** {center, scale} showing ``box`` in a width x height view with ``pad`` margin, in every view: the
 * horizontal extent is the larger of x and z (side views), the vertical the larger of y and z (top). */
export function fit(box, width, height, pad = 0.06) {
  if (!box) return { center: [0, 0, 0], scale: 1 };
  const span = [0, 1, 2].map((a) => Math.max(box.hi[a] - box.lo[a], 1e-6));
  const across = Math.max(span[0], span[2]), down = Math.max(span[1], span[2]);
  const scale = Math.min((width * (1 - 2 * pad)) / across, (height * (1 - 2 * pad)) / down);
  return { center: [0, 1, 2].map((a) => (box.lo[a] + box.hi[a]) / 2), scale };
}

// --- the page state in the URL ---------------------------------------------------------------------

export const DEFAULTS = Object.freeze({
  text: "", lang: "", methods: null, artifact: "", id: "", align: "start", speed: 1, loop: true,
  view: "front", t: null, hide: [],
});
export const SPEEDS = [0.25, 0.5, 0.75, 1, 1.5, 2];
export const PARTS = ["body", "hands", "face"];

/** The state a query string (``?text=...&lang=...&methods=a,b``) asks for; unknown or bad values
 * fall back to the defaults. ``methods`` null means every method. */
export function parseState(search) {
  const q = new URLSearchParams(search), s = { ...DEFAULTS, hide: [] };
  const list = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
  for (const k of ["text", "lang", "artifact", "id"]) if (q.has(k)) s[k] = q.get(k);
  if (q.has("methods")) s.methods = list(q.get("methods"));
  if (ALIGNMENTS.includes(q.get("align"))) s.align = q.get("align");
  const speed = Number(q.get("speed"));
  if (q.has("speed") && speed >= SPEEDS[0] && speed <= SPEEDS[SPEEDS.length - 1]) s.speed = speed;
  if (q.get("loop") === "0") s.loop = false;
  if (q.get("view") in VIEWS) s.view = q.get("view");
  const t = Number(q.get("t"));
  if (q.has("t") && q.get("t") !== "" && Number.isFinite(t) && t >= 0) s.t = t;
  if (q.has("hide")) s.hide = list(q.get("hide")).filter((p) => PARTS.includes(p));
  return s;
}

/** The query string of a state (defaults left out), so that parseState(stateQuery(s)) gives s back. */
export function stateQuery(s) {
  const q = new URLSearchParams();
  for (const k of ["text", "lang", "artifact", "id"]) if (s[k]) q.set(k, s[k]);
  if (s.methods) q.set("methods", s.methods.join(","));
  if (s.align !== DEFAULTS.align) q.set("align", s.align);
  if (s.speed !== DEFAULTS.speed) q.set("speed", String(s.speed));
  if (!s.loop) q.set("loop", "0");
  if (s.view && s.view !== DEFAULTS.view) q.set("view", s.view);
  if (s.t !== null && s.t !== undefined) q.set("t", String(Math.round(s.t * 1000) / 1000));
  if (s.hide && s.hide.length) q.set("hide", s.hide.join(","));
  const out = q.toString();
  return out ? `?${out}` : "";
}
