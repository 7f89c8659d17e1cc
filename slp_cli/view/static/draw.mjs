// Drawing one frame of an mp178 sequence on a 2D canvas, with the bones and colours the server
// sends from slp_cli/skeleton.py (GET /api/skeleton), as `slp render` draws them. Canvas 2D, not
// WebGL: it works everywhere, headless browsers without a GPU included.

import { project } from "./logic.mjs";

// Which articulators each toggle of the page shows.
export const PART_OF = { body: "body", right_hand: "hands", left_hand: "hands", face: "face" };

/** Line widths and joint radii in CSS pixels for a view ``size`` pixels high. */
function widths(size) {
  const u = Math.max(0.6, size / 420);
  return {
    line: { face: 1 * u, body: 3.2 * u, right_hand: 1.7 * u, left_hand: 1.7 * u },
    dot: { face: 0, body: 3.4 * u, right_hand: 1.9 * u, left_hand: 1.9 * u },
  };
}

/** Draw frame ``f`` of ``seq`` ({frames, points, data}) on ``ctx`` with camera ``cam`` (see
 * logic.project; width/height in CSS pixels). ``hidden``: a Set of toggles ("body", "hands",
 * "face") not to draw. Missing joints (NaN) and the bones touching them are skipped. */
export function drawFrame(ctx, seq, f, cam, spec, hidden = new Set()) {
  const n = seq.points, base = f * n * 3, px = new Float32Array(2 * n), ok = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    const o = base + 3 * j, x = seq.data[o], y = seq.data[o + 1], z = seq.data[o + 2];
    if (!(Number.isFinite(x) && Number.isFinite(y))) continue;
    const p = project(x, y, Number.isFinite(z) ? z : cam.center[2], cam);
    px[2 * j] = p[0];
    px[2 * j + 1] = p[1];
    ok[j] = 1;
  }
  const w = widths(cam.height);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const name of spec.draw_order) {
    if (hidden.has(PART_OF[name])) continue;
    ctx.strokeStyle = spec.colors[name];
    ctx.lineWidth = w.line[name];
    ctx.beginPath();
    for (const [a, b] of spec.bones[name]) {
      if (!ok[a] || !ok[b]) continue;
      ctx.moveTo(px[2 * a], px[2 * a + 1]);
      ctx.lineTo(px[2 * b], px[2 * b + 1]);
    }
    ctx.stroke();
    const r = w.dot[name];
    if (r > 0) {
      const [start, stop] = spec.articulators[name];
      ctx.fillStyle = spec.colors[name];
      ctx.beginPath();
      for (let j = start; j < stop; j++) {
        if (!ok[j]) continue;
        ctx.moveTo(px[2 * j] + r, px[2 * j + 1]);
        ctx.arc(px[2 * j], px[2 * j + 1], r, 0, 2 * Math.PI);
      }
      ctx.fill();
    }
  }
  return ok.reduce((a, b) => a + b, 0);
}
