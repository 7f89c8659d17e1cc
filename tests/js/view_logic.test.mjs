// The viewer page's pure logic (slp_cli/view/static/logic.mjs): `node --test tests/js/`, run by
// tests/unit/test_view.py so that `make test` runs it.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  activeGloss, advance, decodeFloat32, decodePose, duration, fit, frameAt, parseState, poseBox,
  project, rotation, spanOnClock, stateQuery, stepTime, VIEWS,
} from "../../slp_cli/view/static/logic.mjs";

const b64 = (floats) => Buffer.from(new Float32Array(floats).buffer).toString("base64"); // node is little-endian

test("base64 float32 decoding keeps values and NaN", () => {
  const values = [1.5, NaN, -2, 3.25e-3, 0, -0.0001];
  const out = decodeFloat32(b64(values));
  assert.equal(out.length, values.length);
  values.forEach((v, i) => (Number.isNaN(v) ? assert.ok(Number.isNaN(out[i])) : assert.equal(out[i], Math.fround(v))));
  // explicit little-endian bytes: 1.0 is 00 00 80 3f
  assert.deepEqual(Array.from(decodeFloat32(Buffer.from([0, 0, 0x80, 0x3f]).toString("base64"))), [1]);
  assert.throws(() => decodeFloat32(Buffer.from([1, 2, 3]).toString("base64")), /multiple of 4/);
});

test("decodePose checks the shape", () => {
  const data = Array.from({ length: 2 * 178 * 3 }, (_, i) => (i === 5 ? NaN : i));
  const seq = decodePose({ method: "m", shape: [2, 178, 3], fps: 25, pose: b64(data) });
  assert.equal(seq.frames, 2);
  assert.equal(seq.points, 178);
  assert.equal(seq.data[3 * 178 + 1], 3 * 178 + 1);
  assert.ok(Number.isNaN(seq.data[5]));
  assert.throws(() => decodePose({ method: "m", shape: [3, 178, 3], fps: 25, pose: b64(data) }), /shape/);
});

test("time -> frame, alignment 'start': own frame rate from 0, last frame held", () => {
  const a = { frames: 50, fps: 25 }, b = { frames: 20, fps: 50 };
  const total = duration([a, b]);
  assert.equal(total, 2);
  assert.equal(frameAt(0, a, "start", total), 0);
  assert.equal(frameAt(0.04, a, "start", total), 1); // exactly k / fps lands on frame k
  assert.equal(frameAt(3 / 25, a, "start", total), 3);
  assert.equal(frameAt(0.0399, a, "start", total), 0);
  assert.equal(frameAt(1.99, a, "start", total), 49);
  assert.equal(frameAt(0.04, b, "start", total), 2); // 50 fps
  assert.equal(frameAt(1.0, b, "start", total), 19); // b ended at 0.4 s: its last frame is held
  assert.equal(frameAt(5, a, "start", total), 49);
  assert.equal(frameAt(-1, a, "start", total), 0);
});

test("time -> frame, alignment 'stretch': every sequence spans the whole clock", () => {
  const a = { frames: 50, fps: 25 }, b = { frames: 25, fps: 25 };
  const total = duration([a, b]);
  assert.equal(frameAt(1, a, "stretch", total), 25);
  assert.equal(frameAt(1, b, "stretch", total), 12);
  assert.equal(frameAt(total, b, "stretch", total), 24);
  assert.equal(frameAt(total * 0.999, b, "stretch", total), 24);
  assert.equal(frameAt(0, b, "stretch", 0), 0);
});

test("gloss spans on the clock for both alignments", () => {
  const a = { frames: 50, fps: 25 }, b = { frames: 25, fps: 25 };
  const total = duration([a, b]); // 2 s
  assert.deepEqual(spanOnClock([0, 25], b, "start", total), [0, 0.5]);
  assert.deepEqual(spanOnClock([0, 25], b, "stretch", total), [0, 1]);
  assert.deepEqual(spanOnClock([10, 20], a, "start", total), [0.2, 0.4]);
  assert.deepEqual(spanOnClock([10, 20], a, "stretch", total), [0.2, 0.4]);
});

test("frame steps follow the finest frame grid and stay on the clock", () => {
  const a = { frames: 50, fps: 25 }, b = { frames: 20, fps: 50 };
  const total = duration([a, b]);
  assert.equal(stepTime(0, [a, b], "start", total, 1), 1 / 50);
  assert.equal(stepTime(0.1, [a, b], "start", total, -1), 4 / 50);
  assert.equal(stepTime(0, [a, b], "start", total, -1), 0);
  assert.equal(stepTime(total, [a, b], "start", total, 1), total);
  assert.equal(stepTime(0, [a, b], "stretch", total, 1), total / 50);
  // stepping frame by frame visits every frame of the longest sequence once
  let t = 0;
  const seen = [frameAt(t, a, "stretch", total)];
  for (let i = 0; i < 49; i++) seen.push(frameAt((t = stepTime(t, [a, b], "stretch", total, 1)), a, "stretch", total));
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
});

test("the clock loops or stops at the end", () => {
  assert.deepEqual(advance(0.5, 0.25, 2, true), { t: 0.75, ended: false });
  assert.deepEqual(advance(1.9, 0.2, 2, false), { t: 2, ended: true });
  const looped = advance(1.9, 0.2, 2, true);
  assert.ok(Math.abs(looped.t - 0.1) < 1e-9 && !looped.ended);
  assert.deepEqual(advance(0, 1, 0, true), { t: 0, ended: true });
});

test("active gloss", () => {
  const spans = [[0, 5], [8, 12]];
  assert.equal(activeGloss(spans, 0), 0);
  assert.equal(activeGloss(spans, 5), -1);
  assert.equal(activeGloss(spans, 11), 1);
  assert.equal(activeGloss(null, 3), -1);
});

const close = (a, b, msg) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-9, `${msg}: ${a} vs ${b}`));

test("rotations are orthonormal; front, side and top views", () => {
  for (const [yaw, pitch] of [[0, 0], [0.3, -0.7], [Math.PI / 2, 0], [2, 1.2]]) {
    const r = rotation(yaw, pitch);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      const dot = r[3 * i] * r[3 * j] + r[3 * i + 1] * r[3 * j + 1] + r[3 * i + 2] * r[3 * j + 2];
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-12);
    }
  }
  const cam = (view) => ({ rot: rotation(VIEWS[view].yaw, VIEWS[view].pitch), center: [0, 0, 0], scale: 100, width: 200, height: 300 });
  close(project(0, 0, 0, cam("front")), [100, 150, 0], "the centre goes to the middle");
  close(project(1, 0.5, 0.7, cam("front")), [200, 200, 0.7], "front: x right, y down, z is depth");
  close(project(0, 0, 1, cam("side")), [200, 150, 0], "side: depth becomes horizontal");
  close(project(1, 0, 0, cam("side")), [100, 150, -1], "side: x becomes depth");
  close(project(0, 0, -1, cam("top")), [100, 250, 0], "top: what is near the camera is at the bottom");
  close(project(0, 1, 0, cam("top")), [100, 150, 1], "top: y becomes depth");
  assert.ok(project(NaN, 0, 0, cam("front")).some(Number.isNaN));
});

test("the pose box ignores missing joints and stray points; the fit shows it in every view", () => {
  const points = 178, frames = 4, data = new Float32Array(frames * points * 3);
  for (let i = 0; i < frames * points; i++) {
    data[3 * i] = ((i * 7) % 11) / 10 - 0.5; // x in [-0.5, 0.5]
    data[3 * i + 1] = ((i * 3) % 13) / 4 - 1; // y in [-1, 2]
    data[3 * i + 2] = ((i * 5) % 7) / 10 - 0.3; // z in [-0.3, 0.3]
  }
  data.set([NaN, NaN, NaN], 0);
  data.set([1e6, 0, 0], 3 * 5); // one stray detection
  const box = poseBox({ frames, points, data });
  assert.ok(box.hi[0] <= 0.5 + 1e-6 && box.lo[0] >= -0.5 - 1e-6, `x box ${box.lo[0]}..${box.hi[0]}`);
  assert.ok(Math.abs(box.hi[1] - 2) < 1e-6 && Math.abs(box.lo[1] + 1) < 1e-6);
  assert.equal(poseBox({ frames: 1, points: 1, data: new Float32Array([NaN, NaN, NaN]) }), null);
  const [w, h] = [320, 240], f = fit(box, w, h);
  for (const view of Object.keys(VIEWS)) {
    const cam = { rot: rotation(VIEWS[view].yaw, VIEWS[view].pitch), center: f.center, scale: f.scale, width: w, height: h };
    for (const x of [box.lo[0], box.hi[0]]) for (const y of [box.lo[1], box.hi[1]]) for (const z of [box.lo[2], box.hi[2]]) {
      const [sx, sy] = project(x, y, z, cam);
      assert.ok(sx >= -1e-6 && sx <= w + 1e-6 && sy >= -1e-6 && sy <= h + 1e-6, `${view}: corner at ${sx}, ${sy}`);
    }
  }
  // the front view fills the height (the box is taller than wide here)
  assert.ok(Math.abs(f.scale * 3 - h * 0.88) < 1e-6);
});

test("the page state survives the URL", () => {
  const s = { ...parseState(""), text: "heute regnet es", lang: "dgs", methods: ["concat", "a2v"], align: "stretch", speed: 0.5, loop: false, view: "side", t: 1.25, hide: ["face"] };
  const q = stateQuery(s);
  assert.match(q, /^\?text=heute\+regnet\+es&lang=dgs&methods=concat%2Ca2v/);
  assert.deepEqual(parseState(q), s);
  assert.equal(stateQuery(parseState("")), "");
  const bad = parseState("?align=sideways&speed=9&view=inside&t=-3&hide=face,toes&methods=");
  assert.equal(bad.align, "start");
  assert.equal(bad.speed, 1);
  assert.equal(bad.view, "front");
  assert.equal(bad.t, null);
  assert.deepEqual(bad.hide, ["face"]);
  assert.deepEqual(bad.methods, []);
  assert.deepEqual(parseState("?artifact=corpus&id=dgs-test-1").id, "dgs-test-1");
});
