"""`slp extract`: videos and frame folders -> an mp178 pose artifact, in parallel and resumable.

One worker process per video (``workers`` processes, each with its own MediaPipe graph, reset
between videos); the parent appends each finished video to ``<output>.partial`` through
``ArtifactWriter`` as soon as it arrives, so an interrupted run loses at most the videos in
flight, and running the same command again skips the ids already in the partial file. Inputs
that cannot be used (not found, cannot be opened or decoded, no frames, no person in any frame)
are reported and kept in the artifact's log of skipped inputs; they never stop the others. If
no input at all yields a sample, nothing is written and SlpError says why.

Several machines: ``shard=(k, n)`` keeps the inputs whose id hashes to k (``sources.shard_of``);
each shard writes its own artifact and ``slp merge`` joins them (docs/design.md, section 9).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..artifacts import ArtifactWriter, Sample, provenance
from ..atomic import refuse_overwriting
from ..errors import SlpError
from ..progress import SILENT, Progress
from .mediapipe import BackendOptions, check_backend, make_backend
from .sources import Source, find_sources, frame_files, select_shard

DEFAULT_FRAMES_FPS = 25.0  # PHOENIX-2014T and CSL-Daily frame folders are 25 fps


@dataclass
class Result:
    """What a worker sends back for one source: a sample, or the reason it could not make one."""

    source: Source
    sample: Sample | None = None
    reason: str = ""
    frames: int = 0  # frames decoded (before resampling)
    seconds: float = 0.0


def probe_fps(source: Source, frames_fps: float) -> float | None:
    """The frame rate of a source (None when a video cannot be opened or reports none)."""
    if source.kind == "frames":
        return frames_fps
    import cv2

    cap = cv2.VideoCapture(str(source.path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else None


def iter_frames(source: Source):
    """Yield RGB frames of a source; raises ValueError with the reason when it cannot be read.

    An unreadable image inside a frame folder yields None (a missing frame keeps the timing)."""
    import cv2

    if source.kind == "frames":
        files = frame_files(source.path)
        if not files:
            raise ValueError("no frame images in the folder")
        for f in files:
            bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
            yield None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return
    cap = cv2.VideoCapture(str(source.path))
    if not cap.isOpened():
        cap.release()
        raise ValueError("cannot be opened as a video (corrupt, not a video, or a codec OpenCV lacks)")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def extract_source(source: Source, backend, *, fps: float, frames_fps: float = DEFAULT_FRAMES_FPS) -> Result:
    """Run a backend over every frame of one source and build its Sample at ``fps``.

    The sample carries ``arrays['source_fps']`` (1,) and ``arrays['frame_size']`` (1, 2) =
    (width, height) in pixels, the canvas of its coordinates."""
    from ..interop.pose_format import resample

    t0 = time.perf_counter()
    src_fps = probe_fps(source, frames_fps)
    backend.start_video(src_fps or fps)
    poses, confs, size = [], [], None
    try:
        for rgb in iter_frames(source):
            if rgb is None:
                poses.append(np.full((178, 3), np.nan, np.float32))
                confs.append(np.zeros(178, np.float32))
                continue
            size = size or (rgb.shape[1], rgb.shape[0])
            xyz, conf = backend(rgb)
            poses.append(xyz)
            confs.append(conf)
    except ValueError as e:
        return Result(source, reason=str(e), seconds=time.perf_counter() - t0)
    n = len(poses)
    if n == 0 or size is None:
        what = "no frames could be decoded" if source.kind == "video" else "no readable frame images"
        return Result(source, reason=what, frames=n, seconds=time.perf_counter() - t0)
    pose, conf = np.stack(poses), np.stack(confs)
    if not np.isfinite(pose).any():
        return Result(source, reason=f"no person found in any of its {n} frames", frames=n,
                      seconds=time.perf_counter() - t0)
    if src_fps is not None:
        pose, conf = resample(pose, conf, src_fps, fps)
    sample = Sample(id=source.id, pose=pose, confidence=conf, arrays={
        "source_fps": np.array([src_fps or 0.0], np.float32),
        "frame_size": np.array([size], np.float32)})
    return Result(source, sample=sample, frames=n, seconds=time.perf_counter() - t0)


# --- worker processes -------------------------------------------------------------------------

_BACKEND = None
_INIT_ERROR: SlpError | None = None


def _init_worker(opts: BackendOptions, quiet: bool) -> None:
    import cv2

    global _BACKEND, _INIT_ERROR
    if quiet:
        # MediaPipe's C++ side logs warnings per graph and per frame straight to file descriptor 2,
        # past any Python setting; a worker's own stderr is not needed (errors come back as Results).
        # Its stdout too: a download notice there would mix with the parent's --json.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    cv2.setNumThreads(1)  # one core per worker: parallelism comes from the processes
    try:
        _BACKEND = make_backend(opts)
    except SlpError as e:  # raised again by the first task, so the parent reports it as one line
        _INIT_ERROR = e


def _work(source: Source, fps: float, frames_fps: float) -> Result:
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    try:
        return extract_source(source, _BACKEND, fps=fps, frames_fps=frames_fps)
    except SlpError:
        raise
    except Exception as e:  # a bug or a MediaPipe failure on one video must not stop the others
        return Result(source, reason=f"extraction failed: {type(e).__name__}: {e}")


# --- the stage --------------------------------------------------------------------------------

def _choose_fps(sources: list[Source], fps: float | None, frames_fps: float) -> float:
    if fps is not None:
        if not fps > 0:
            raise SlpError(f"--fps {fps}: must be positive")
        return float(fps)
    for s in sources:  # the first input that reports a rate; the others are resampled to it
        rate = probe_fps(s, frames_fps)
        if rate:
            return rate
    return frames_fps


def run(inputs: Iterable[str | Path], output: str | Path, *, workers: int | None = None,
        fps: float | None = None, frames_fps: float = DEFAULT_FRAMES_FPS,
        shard: tuple[int, int] | None = None, backend: BackendOptions = BackendOptions(),
        quiet: bool = True, progress: Progress = SILENT, sources: list[Source] | None = None) -> dict:
    """Extract every input into ``output`` (an mp178 artifact); returns a summary dict.

    ``fps``: rate of the artifact (default: the first input's own rate; inputs at another rate
    are resampled linearly). ``frames_fps``: the rate of frame folders. ``quiet`` silences
    MediaPipe's own logging in the workers. ``sources`` replaces the search of ``inputs`` with
    explicit (id, path, kind) sources. ``progress`` gets a task over the sources (advanced per
    video done or skipped; its ``last`` field names the last video done, ``rate`` the speed) and
    a note per skipped input. Re-running with the same arguments resumes.
    """
    inputs = [str(p) for p in inputs]
    refuse_overwriting([output], inputs)
    output = Path(output)
    check_backend(backend)
    workers = max(1, workers or os.cpu_count() or 1)
    # ``sources`` given: ids chosen by the caller (a corpus reader keeps the corpus' own names)
    all_sources, problems = (list(sources), []) if sources is not None else find_sources(inputs)
    sources = select_shard(all_sources, shard)
    if not all_sources:
        first = f"{problems[0].input}: {problems[0].reason}" if problems else "no inputs given"
        raise SlpError(f"no video or frame folder found among the {len(inputs)} input(s) ({first}); nothing written")
    args = {"fps": fps, "frames_fps": frames_fps, "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
            **asdict(backend)}
    partial = output.with_name(output.name + ".partial")
    rate = _resumed_fps(partial) if fps is None and partial.exists() else None
    rate = rate or _choose_fps(sources, fps, frames_fps)
    prov = provenance("extract", args, inputs)
    writer = ArtifactWriter(output, fps=rate, provenance=prov, resume=True)
    if not writer.done_ids:  # nothing to keep: start afresh, with this run's fps and provenance
        writer.abort()
        writer = ArtifactWriter(output, fps=rate, provenance=prov, resume=False)
    _check_resume(writer, args)
    logged = {(s["input"], s["reason"]) for s in _skipped_log(writer)}

    todo = [s for s in sources if s.id not in writer.done_ids]
    resumed = len(sources) - len(todo)
    skipped: list[dict] = []
    failed: list[dict] = []  # the sources among them (not the inputs that yielded none)
    done = frames = 0
    t0 = time.perf_counter()
    try:
        with progress.task("extracting", total=len(sources), completed=resumed) as task:
            def skip(what: str, reason: str, counted: bool = True) -> None:
                if (what, reason) not in logged:
                    writer.log_skipped(what, reason)
                    logged.add((what, reason))
                skipped.append({"input": what, "reason": reason})
                task.note(f"skipped {what}: {reason}")
                if counted:
                    failed.append(skipped[-1])
                    task.advance()

            if resumed:
                task.note(f"resuming: {resumed} of {len(sources)} inputs already in {writer.partial}")
            for p in problems:
                skip(p.input, p.reason, counted=False)  # not one of the `total` sources
            for res in _results(todo, workers, backend, rate, frames_fps, quiet):
                if res.sample is None:
                    skip(str(res.source.path), res.reason)
                    continue
                writer.append(res.sample)
                done += 1
                frames += res.frames
                dt = max(time.perf_counter() - t0, 1e-9)
                task.advance()
                task.update(last=res.source.id, rate=f"{done / dt:.2f} videos/s, {frames / dt:.1f} frames/s")
    except BaseException:
        writer.abort()  # the partial file stays: re-running the command resumes from it
        raise
    if sources and not writer.done_ids:
        writer.abort()
        writer.partial.unlink(missing_ok=True)
        first = (failed or skipped)[0]
        raise SlpError(f"all {len(sources)} input(s) failed, nothing written (first: {first['input']}: "
                       f"{first['reason']})")
    total = len(writer.done_ids)
    writer.commit()
    return {"output": str(output), "samples": total, "extracted": done, "resumed": resumed,
            "frames": frames, "fps": rate, "seconds": time.perf_counter() - t0, "skipped": skipped,
            "inputs": len(sources), "shard_empty": not sources}


def _mp_context():
    """Workers forked from a clean server process that has imported MediaPipe once (forkserver),
    never from this process, whose threads (progress bar) a fork would copy mid-flight; spawn
    where there is no forkserver (Windows)."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["slp_cli.extract.runner", "cv2", "mediapipe"])
    return ctx


def _results(todo: list[Source], workers: int, backend: BackendOptions, fps: float, frames_fps: float,
             quiet: bool):
    """Yield Results as videos finish, from a pool of worker processes (one video each at a time)."""
    if not todo:
        return
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=_mp_context(),
                               initializer=_init_worker, initargs=(backend, quiet))
    queue = list(reversed(todo))
    running = set()
    try:
        while queue or running:
            while queue and len(running) < 2 * workers:  # a small window: memory stays flat
                running.add(pool.submit(_work, queue.pop(), fps, frames_fps))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    raise SlpError("a worker process died (out of memory or a crash inside MediaPipe; "
                                   "--verbose shows its messages); finished videos are kept: re-run the "
                                   "same command to resume") from None
    finally:
        if not running:  # every video done: a clean shutdown (a half-closed pool can print a traceback at exit)
            pool.shutdown(wait=True)
        else:
            for fut in running:
                fut.cancel()
            procs = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:  # an interrupt must not wait for the videos in flight
                if p.is_alive():
                    p.terminate()


def _skipped_log(writer: ArtifactWriter) -> list[dict]:
    import json

    return json.loads(writer.f.attrs.get("skipped", "[]"))


def _resumed_fps(partial: Path) -> float | None:
    """The fps of a partial file left by an earlier run (None if it is unreadable)."""
    import h5py

    try:
        with h5py.File(partial, "r") as f:
            return float(f.attrs["fps"])
    except (OSError, KeyError):
        return None


def _check_resume(writer: ArtifactWriter, args: dict) -> None:
    """Refuse to mix samples extracted with other options into one artifact."""
    import json

    if not writer.done_ids:
        return
    before = json.loads(writer.f.attrs.get("provenance", "{}")).get("args", {})
    diff = sorted(k for k in args if k in before and before[k] != args[k])
    if diff:
        writer.abort()
        shown = ", ".join(f"{k}={before[k]!r}" for k in diff)
        raise SlpError(f"{writer.partial}: an interrupted run with other options ({shown}) left this partial "
                       f"file; re-run with those options to resume it, or delete it to start afresh")
