"""ONE training loop for every model (`slp train <model>`): CPU, one CUDA GPU with bf16 autocast,
or several GPUs/processes with DistributedDataParallel (`torchrun --nproc_per_node N -m slp_cli
train ...`; gloo on CPU, NCCL on CUDA).

A run directory holds:

* ``config.json``   human-readable: the model, its kind, the preset, the hyperparameters, the run's
  options and inputs, and the loop settings changed by each ``--resume`` (written at the start);
* ``checkpoint.pt`` the latest state: weights, data state, optimizer, scheduler, step, best dev
  loss, every process' RNG states (every ``checkpoint_every`` steps and at the end; ``--resume``
  continues exactly from it);
* ``best.pt``       the weights with the lowest dev loss so far (when there is a dev split);
* ``metrics.csv``   long format: step, split, name, value (train losses, dev losses, lr, frames/s);
* ``loss.png``      the loss curves;
* ``model.pt``      the final model (best dev weights, else the last), written LAST by rename, so
  its presence means the run finished (make skips the stage).

A run starts from data (the model's ``from_data``), from the checkpoint of an interrupted run
(``resume``: only loop settings may change) or from the weights of an earlier finished run of the
same model (``init``: its architecture and data state, with this run's run settings).
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import __version__
from .artifacts import load, read_header
from .atomic import atomic_write, refuse_overwriting, write_json
from .data.loader import BucketBatchSampler
from .device import autocast, resolve_device, to_device
from .errors import SlpError
from .models import LOOP_FIELDS, SlpModel, config_dict, get_model_class, load_model, read_blob
from .progress import SILENT, Progress


@dataclass
class TrainOptions:
    """What one `slp train` invocation asks for (model configuration aside)."""

    output: Path
    data: list[Path]
    langs: list[str] | None = None
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    init: Path | None = None  # start from the weights of an earlier run of the same model
    dry_run: bool = False
    workers: int | None = None
    amp: bool = True
    progress: Progress = SILENT
    log: Callable[[str], None] | None = None  # one line for humans
    inputs: dict = field(default_factory=dict)  # paths the model's from_data takes (e.g. a tokenizer)


# --- distributed / device ------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started_group: bool = False  # this run started the process group (and ends it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Read torchrun's environment; start the process group (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dist = Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name, local_rank=dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        dist.started_group = True
    return dist, device


def _all_mean(values: dict[str, torch.Tensor], dist: Dist, device) -> dict[str, float]:
    """The mean over processes of each scalar, with one transfer to the host."""
    names = list(values)
    t = torch.stack([torch.as_tensor(values[k], dtype=torch.float64, device=device) for k in names])
    if dist.world > 1:
        torch.distributed.all_reduce(t)
        t /= dist.world
    return dict(zip(names, t.tolist()))


def _all_sum_means(totals: dict[str, torch.Tensor], count: int, dist: Dist, device) -> dict[str, float]:
    """sum / count of each total, both summed over the processes (a process may have no batch)."""
    names = sorted(totals)
    t = torch.stack([torch.as_tensor(totals[k], dtype=torch.float64, device=device).reshape(()) for k in names]
                    + [torch.tensor(float(count), dtype=torch.float64, device=device)])
    if dist.world > 1:
        torch.distributed.all_reduce(t)
    sums = t.tolist()
    n = max(sums[-1], 1.0)
    return {k: v / n for k, v in zip(names, sums[:-1])}


# --- data ------------------------------------------------------------------------------------

def is_annotations(path: Path) -> bool:
    """Whether ``--data`` names a JSON lines file of annotations (no poses) rather than an artifact."""
    return Path(path).suffix.lower() in (".jsonl", ".json")


def load_annotations(path: Path):
    """The records of a JSON lines file as `slp synth --annotations` reads them (id, text, glosses,
    lang, split) as an artifact of samples without frames, for models that read no poses."""
    from .artifacts import Artifact, Sample
    from .data.synth import read_annotations

    samples = [Sample(id=r["id"], pose=np.zeros((0, 178, 3), np.float32), text=str(r.get("text") or ""),
                      glosses=list(r["glosses"]), lang=str(r.get("lang") or ""), split=str(r.get("split") or "train"))
               for r in read_annotations(path)]
    return Artifact(Path(path), samples, fps=0.0)


def load_splits(paths: list[Path], langs: list[str] | None, text_only: bool = False) -> tuple[list, list, dict]:
    """Train and dev samples of one or more artifacts (e.g. one per language), filtered by language;
    for a model that reads no poses (``text_only``), also of annotation files (JSON lines)."""
    notes = [p for p in paths if is_annotations(p)]
    if notes and not text_only:
        raise SlpError(f"{notes[0]}: annotations without poses; this model trains on poses: give a pose artifact "
                       "(.h5), e.g. `slp synth --annotations FILE.jsonl -o corpus.h5` then `slp normalize`")
    arts = [load_annotations(p) if is_annotations(p) else load(p) for p in paths]
    samples = [s for a in arts for s in a]
    present = sorted({s.lang for s in samples})
    if langs:
        missing = [l for l in langs if l not in present]
        if missing:
            raise SlpError(f"{', '.join(map(str, paths))}: no samples of language(s) {', '.join(missing)}; "
                           f"the data has {', '.join(present) or 'no language labels'}")
        samples = [s for s in samples if s.lang in langs]
    # a sample with no joint in any frame teaches nothing (and weighs its batch toward a loss of 0)
    empty = [s for s in samples if s.num_frames and not np.isfinite(s.pose).all(-1).any()]
    samples = [s for s in samples if s not in empty] if empty else samples
    train = [s for s in samples if s.split == "train"]
    dev = [s for s in samples if s.split == "dev"]
    where = ", ".join(map(str, paths))
    if not train:
        why = f" ({len(empty)} samples have no joint present in any frame: all NaN)" if empty else ""
        raise SlpError(f"{where}: no usable train-split samples to train on{why}")
    info = {"fps": arts[0].fps, "normalized": all(a.normalized for a in arts), "langs": sorted({s.lang for s in train}),
            "normalization": arts[0].normalization, "skipped": [s.id for s in empty]}
    return train, dev, info


def make_loaders(model: SlpModel, train_samples: list, dev_samples: list, dist: Dist, device, options: TrainOptions):
    """(train loader, its sampler, dev loader or None): length-bucketed batches split across ranks."""
    batch_size = model.config.batch_size
    train_ds = model.make_dataset(train_samples)
    if len(train_ds) < batch_size:
        raise SlpError(f"{options.data[0]}: {len(train_ds)} training sequences are too few for a batch of "
                       f"{batch_size}; lower --batch-size or use more data")
    dev_ds = model.make_dataset(dev_samples) if dev_samples else None
    if dev_ds is not None and 0 < len(dev_ds) < dist.world:
        raise SlpError(f"{options.data[0]}: {len(dev_ds)} dev sequences for {dist.world} processes; every process "
                       "evaluates a share of the dev split: use fewer processes or more dev data")
    workers = options.workers if options.workers is not None else (2 if device.type == "cuda" else 0)
    sampler = BucketBatchSampler(train_ds.lengths, batch_size, seed=options.seed, rank=dist.rank, world_size=dist.world)
    # Each loader draws its worker seed from its own generator, not the global RNG, so that an
    # evaluation or a resumed epoch does not shift the model's random stream (exact resume).
    loader_kw = dict(collate_fn=model.collate, num_workers=workers, pin_memory=device.type == "cuda",
                     persistent_workers=workers > 0, generator=torch.Generator().manual_seed(options.seed))
    train_loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, **loader_kw)
    dev_loader = None
    if dev_ds is not None and len(dev_ds):  # each process evaluates its share; the sums are all-reduced
        dev_sampler = BucketBatchSampler(dev_ds.lengths, batch_size, shuffle=False, drop_last=False,
                                         rank=dist.rank, world_size=dist.world)
        dev_loader = torch.utils.data.DataLoader(dev_ds, batch_sampler=dev_sampler, **loader_kw)
    return train_loader, sampler, dev_loader


# --- building the model: new, resumed, or from an earlier run ---------------------------------

def flag(cls: type[SlpModel], name: str) -> str:
    """The command-line flag of a config field."""
    meta = {f.name: f.metadata for f in fields(cls.Config)}.get(name, {})
    return "--" + meta.get("flag", name.replace("_", "-"))


def _refuse_changes(cls: type[SlpModel], given: dict, recorded: dict, allowed: frozenset, why: str) -> None:
    """One line for the first option given that differs from the recorded run and may not change."""
    for name, value in given.items():
        if value is not None and name not in allowed and name in recorded and value != recorded[name]:
            raise SlpError(f"{flag(cls, name)} {value}: {why} with {name}={recorded[name]!r}; only the loop "
                           f"settings ({', '.join(sorted(allowed))}) can change here (start a new run with "
                           "another -o to change the rest)")


def _resumed_model(cls, blob: dict, options: TrainOptions, preset: str | None, overrides: dict):
    """The interrupted run's model with changed loop settings; (model, preset, changes)."""
    run = blob.get("run", {})
    if preset is not None and preset != run.get("preset"):
        raise SlpError(f"--preset {preset}: the run in {options.output} was started with preset "
                       f"{run.get('preset')!r}; drop --preset to resume it")
    recorded = blob["config"]
    _refuse_changes(cls, overrides, recorded, LOOP_FIELDS, f"the run in {options.output} was trained")
    changes = {k: v for k, v in overrides.items() if v is not None and k in LOOP_FIELDS and recorded.get(k) != v}
    config = cls.Config(**{**recorded, **changes})
    return cls(config, blob["data"]), run.get("preset"), changes


def _initialised_model(cls, options: TrainOptions, preset: str, overrides: dict, samples: list) -> SlpModel:
    """A model with the architecture, data state and weights of the finished run ``options.init``
    and this run's run settings (loop settings and the model's ``run_fields``)."""
    prev = load_model(options.init, expect=cls.name)
    fresh = config_dict(cls.make_config(preset, overrides))
    allowed = LOOP_FIELDS | cls.run_fields
    _refuse_changes(cls, overrides, config_dict(prev.config), allowed, f"--init {options.init} was trained")
    config = cls.Config(**{**config_dict(prev.config), **{k: v for k, v in fresh.items() if k in allowed}})
    model = cls(config, {**prev.data, "init_from": str(options.init)})
    model.load_state_dict(prev.state_dict())
    model.on_init(samples, options.init)
    return model


def build_model(model_name: str, options: TrainOptions, preset: str | None, overrides: dict, train_samples: list,
                info: dict):
    """(model, checkpoint blob or None, preset, loop settings changed on resume)."""
    cls = get_model_class(model_name)
    if options.resume:
        blob = read_checkpoint(Path(options.output), model_name)
        model, preset, changes = _resumed_model(cls, blob, options, preset, overrides)
        return model, blob, preset, changes
    preset = preset or "default"
    _seed_everything(options.seed)
    if options.init is not None:
        model = _initialised_model(cls, options, preset, overrides, train_samples)
    else:
        model = cls.from_data(cls.make_config(preset, overrides), train_samples, **options.inputs)
    # What the data says about the poses: a generator writes its outputs with this header.
    model.data.update(fps=float(info["fps"]), normalized=bool(info["normalized"]),
                      normalization=info["normalization"])
    return model, None, preset, {}


# --- checkpoints and RNG ---------------------------------------------------------------------

def read_checkpoint(out: Path, model_name: str) -> dict:
    if not (out / "checkpoint.pt").exists():
        raise SlpError(f"{out}: nothing to resume (no checkpoint.pt); start without --resume")
    blob = read_blob(out / "checkpoint.pt")
    if blob["model"] != model_name:
        raise SlpError(f"{out}: holds a '{blob['model']}' run; cannot resume it as '{model_name}' "
                       f"(resume it with the command that started it, or choose another -o)")
    return blob


def _atomic_save(obj, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()  # this process' device
    return state


def _all_rng_states(dist: Dist) -> list[dict]:
    """Every process' RNG states (gathered on every rank; rank 0 saves them)."""
    mine = _rng_state()
    if dist.world == 1:
        return [mine]
    states = [None] * dist.world
    torch.distributed.all_gather_object(states, mine)
    return states


def _restore_rng(states: list[dict], dist: Dist, seed: int, step: int) -> None:
    """Each process takes its own saved state; with another number of processes than the run had,
    a fresh seed per process (the data order is still exact: it depends on the step only)."""
    if len(states) != dist.world:
        _seed_everything(seed + 1000 * step + dist.rank)
        return
    state = states[dist.rank]
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# --- logging -------------------------------------------------------------------------------

class MetricLog:
    """metrics.csv in long format (step, split, name, value), TensorBoard if installed, and the plot."""

    def __init__(self, out: Path, resume_step: int | None):
        self.path = out / "metrics.csv"
        rows = []
        if resume_step is not None and self.path.exists():
            with open(self.path) as f:  # drop rows logged after the checkpoint we resume from
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "split", "name", "value"])
            w.writerows([[r["step"], r["split"], r["name"], r["value"]] for r in rows])
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except Exception:  # noqa: BLE001 - tensorboard is optional
            pass

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            for name, v in values.items():
                w.writerow([step, split, name, f"{v:.6g}"])
                if self.tb:
                    self.tb.add_scalar(f"{split}/{name}", v, step)

    def plot(self, out_png: Path, title: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with open(self.path) as f:
            rows = [r for r in csv.DictReader(f) if r["name"] == "loss"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for split, style in (("train", "-"), ("dev", "o-")):
            pts = [(int(r["step"]), float(r["value"])) for r in rows if r["split"] == split]
            if pts:
                ax.plot(*zip(*pts), style, label=f"{split} loss", markersize=3)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if rows and all(float(r["value"]) > 0 for r in rows):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_write(out_png) as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)


# --- the loop --------------------------------------------------------------------------------

@dataclass
class Run:
    """One training run in progress: the model (and its DDP wrapper), optimizer, counters, logs."""

    name: str
    model: SlpModel
    options: TrainOptions
    dist: Dist
    device: torch.device
    info: dict  # config.json
    state: dict = field(default_factory=lambda: {"step": 0, "best": math.inf, "bad_evals": 0})
    net: torch.nn.Module = None
    optimizer: object = None
    scheduler: object = None
    metrics: MetricLog | None = None

    @property
    def out(self) -> Path:
        return Path(self.options.output)

    def autocast(self):
        return autocast(self.device, self.options.amp)

    def start(self, blob: dict | None) -> None:
        """Move to the device, make the optimizer, restore a checkpoint, wrap for DDP, open the logs."""
        model = self.model
        model.to(self.device)
        self.optimizer, self.scheduler = model.configure_optimizers()
        if blob is not None:
            model.load_state_dict(blob["state_dict"])
            self.optimizer.load_state_dict(blob["optimizer"])
            if self.scheduler is not None and blob.get("scheduler"):
                self.scheduler.load_state_dict(blob["scheduler"])
            self.state.update(blob["state"])
            _restore_rng(blob["rng"], self.dist, self.options.seed, self.state["step"])
        self.net = model
        if self.dist.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "config.json", self.info, default=str)
            self.metrics = MetricLog(self.out, self.state["step"] if blob is not None else None)

    def step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One optimizer step; the step's losses."""
        self.model.on_step_start(self.state["step"])
        batch = to_device(batch, self.device)
        with self.autocast():
            values = self.net(batch)
        loss = values["loss"]
        if not torch.isfinite(loss):
            raise SlpError(f"{self.name}: the loss became {loss.item()} at step {self.state['step']}; "
                           f"lower the learning rate (--lr) or check the data for extreme values")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.model.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.model.config.grad_clip)
        self.optimizer.step()
        if self.model.scheduler_interval == "step" and self.scheduler is not None:
            self.scheduler.step()
        self.state["step"] += 1
        return values

    @torch.no_grad()
    def evaluate(self, loader) -> dict[str, float]:
        """Mean of every validation_step value over the dev set (weighted by batch size, summed
        over the processes, so that every process takes the same decisions); keeps the best
        weights, steps a plateau scheduler, counts evaluations without improvement."""
        model = self.model
        model.eval()
        totals: dict[str, torch.Tensor] = {}
        count = 0
        for batch in loader:
            batch = to_device(batch, self.device)
            with self.autocast():
                out = model.validation_step(batch)
            n = int(batch.get("batch_size", 1)) if isinstance(batch, dict) else 1
            for k, v in out.items():
                totals[k] = totals.get(k, 0.0) + v.detach().double() * n
            count += n
        model.train()
        values = model.finish_evaluation(_all_sum_means(totals, count, self.dist, self.device))
        model.on_evaluate(values)
        if self.metrics:
            self.metrics.write(self.state["step"], "dev", values)
        name, mode = model.selection
        if name not in values:
            raise SlpError(f"{self.name}: the dev evaluation gives no {name!r} to select the best weights by "
                           f"(it gives {', '.join(values)})")
        value = values[name] if mode == "min" else -values[name]
        if model.scheduler_interval == "eval" and self.scheduler is not None:
            self.scheduler.step(value)
        if value < self.state["best"]:
            self.state["best"], self.state["bad_evals"] = value, 0
            if self.dist.main:
                _atomic_save(self.model.blob(), self.out / "best.pt")
        else:
            self.state["bad_evals"] += 1
        return values

    def best_dev(self) -> dict:
        """The selection metric and its best dev value as the model states it (a "max" one is kept negated)."""
        name, mode = self.model.selection
        best = self.state["best"]
        return {"name": name, "value": best if mode == "min" or not math.isfinite(best) else -best}

    def save_checkpoint(self) -> None:
        rng = _all_rng_states(self.dist)
        if self.dist.main:
            _atomic_save({**self.model.blob(), "optimizer": self.optimizer.state_dict(),
                          "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                          "state": dict(self.state), "rng": rng, "run": self.info}, self.out / "checkpoint.pt")

    def finish(self) -> None:
        """The last checkpoint, the plot, and model.pt (best dev weights, else the last) by rename."""
        self.save_checkpoint()
        if self.dist.main:
            final = torch.load(self.out / "best.pt", weights_only=False) if (self.out / "best.pt").exists() \
                else self.model.blob()
            final["run"] = self.info
            self.metrics.plot(self.out / "loss.png", f"{self.name} ({self.info['preset']})")
            _atomic_save(final, self.out / "model.pt")
        if self.dist.world > 1:
            torch.distributed.barrier()


def _run_info(name: str, model: SlpModel, preset: str, options: TrainOptions, info: dict, dist: Dist, device,
              blob: dict | None, changes: dict) -> dict:
    """config.json: human-readable hyperparameters and run settings (no learned data)."""
    history = list((blob or {}).get("run", {}).get("resumed", []))
    if blob is not None:
        history.append({"step": blob["state"]["step"], "changed": changes})
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
            if k not in ("log", "progress", "inputs")}
    return {"model": name, "kind": model.kind, "preset": preset, "config": config_dict(model.config),
            "options": opts, "inputs": {k: str(v) for k, v in options.inputs.items()}, "data": info["langs"],
            "world_size": dist.world, "device": str(device), "slp_version": __version__, "resumed": history}


def _loop(run: Run, train_loader, sampler, dev_loader) -> None:
    """Train until max_steps or early stopping: log, evaluate and checkpoint on their schedules."""
    config, state = run.model.config, run.state
    log = (run.options.log if run.dist.main else None) or (lambda line: None)
    progress = run.options.progress if run.dist.main else SILENT
    per_epoch = len(sampler)
    window: dict[str, float] = {}
    frames, t_window = 0, time.perf_counter()
    with progress.task(f"train {run.name}", total=config.max_steps, completed=state["step"]) as task:
        while state["step"] < config.max_steps:
            epoch, offset = divmod(state["step"], per_epoch)
            sampler.set_epoch(epoch, offset)
            for batch in train_loader:
                values = run.step(batch)
                frames += int(batch.get("num_frames", 0)) if isinstance(batch, dict) else 0
                for k, v in values.items():  # summed on the device: one transfer per log line
                    window[k] = window.get(k, 0.0) + v.detach().double()
                step = state["step"]
                if step % config.log_every == 0 or step == config.max_steps:
                    n = config.log_every if step % config.log_every == 0 else step % config.log_every
                    speed = frames / max(time.perf_counter() - t_window, 1e-9)
                    means = _all_mean({**{k: v / n for k, v in window.items()}, "frames_per_s": speed},
                                      run.dist, run.device)
                    means.update(lr=run.optimizer.param_groups[0]["lr"], frames_per_s=means["frames_per_s"] * run.dist.world)
                    if run.metrics:
                        run.metrics.write(step, "train", means)
                    task.update(completed=step, loss=f"{means['loss']:.4g}",
                                speed=f"{means['frames_per_s']:,.0f} frames/s")
                    window, frames, t_window = {}, 0, time.perf_counter()
                if (step % config.eval_every == 0 or step == config.max_steps) and dev_loader is not None:
                    run.evaluate(dev_loader)
                    if config.patience and state["bad_evals"] >= config.patience:
                        log(f"early stop at step {step}: no better dev {run.model.selection[0]} in "
                            f"{config.patience} evaluations")
                        return
                if step % config.checkpoint_every == 0:
                    run.save_checkpoint()
                if step >= config.max_steps:
                    return


def train(model_name: str, options: TrainOptions, preset: str | None = None, overrides: dict | None = None) -> dict:
    """Train (or resume) a registered model; returns a summary of the run.

    ``preset`` defaults to ``default`` for a new run and to the recorded one on ``resume``;
    ``overrides`` are config values (None: the preset's)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    out = Path(options.output)
    cls = get_model_class(model_name)  # an unknown name fails before any work
    for name, sequences in cls.run_sequences.items():
        if overrides.get(name) in sequences:
            return train_sequence(model_name, options, preset, overrides, sequences[overrides[name]], name)
    if out.exists() and not out.is_dir():
        raise SlpError(f"{out}: is a file; -o names the run directory to write (config.json, checkpoints, model.pt)")
    refuse_overwriting([out], options.data)
    if options.resume and options.init is not None:
        raise SlpError("--resume continues an interrupted run, --init starts a new one from a finished run: "
                       "give one of them")
    dist, device = setup_distributed(options.device)
    if not options.resume and not options.dry_run and ((out / "checkpoint.pt").exists() or (out / "model.pt").exists()):
        raise SlpError(f"{out}: already holds a training run; add --resume to continue it, or choose another -o")
    train_samples, dev_samples, info = load_splits([Path(p) for p in options.data], options.langs,
                                                   text_only=not cls.reads_poses)
    if info["skipped"] and options.log and dist.main:
        options.log(f"skipped {len(info['skipped'])} samples with no joint present in any frame (all NaN), "
                    f"e.g. '{info['skipped'][0]}'")
    if not dev_samples and options.log and dist.main and not options.dry_run:
        options.log("note: no dev split: no early stopping or best-checkpoint choice; model.pt will be the last weights")
    model, blob, preset, changes = build_model(model_name, options, preset, overrides, train_samples, info)
    if model.needs_normalized_poses and not info["normalized"]:  # (an SMPL-X tokenizer reads parameters)
        raw = next(p for p in options.data if not read_header(p)["normalized"])
        raise SlpError(f"{raw}: not normalized; {model_name} trains on normalized poses: run "
                       f"`slp normalize {raw} -o {Path(raw).with_suffix('')}.norm.h5` and train on that")
    if dist.rank and blob is None:  # the same weights everywhere, but each process its own dropout and augmentation
        _seed_everything(options.seed + dist.rank)
    if options.dry_run:
        return {"model": model_name, "preset": preset, "parameters": model.num_parameters(),
                "config": config_dict(model.config), "train_samples": len(train_samples),
                "dev_samples": len(dev_samples)}
    train_loader, sampler, dev_loader = make_loaders(model, train_samples, dev_samples, dist, device, options)
    run = Run(model_name, model, options, dist, device,
              _run_info(model_name, model, preset, options, info, dist, device, blob, changes))
    run.start(blob)
    if blob is not None and options.log:
        options.log(f"resuming {model_name} from step {run.state['step']}"
                    + (f" with {', '.join(f'{k}={v}' for k, v in changes.items())}" if changes else ""))
    t_start = time.perf_counter()
    model.train()
    try:
        _loop(run, train_loader, sampler, dev_loader)
        run.finish()
    except KeyboardInterrupt:
        if dist.world == 1:  # (under torchrun the last scheduled checkpoint is what there is)
            run.save_checkpoint()
        raise KeyboardInterrupt(f"training stopped at step {run.state['step']}; the checkpoint in {out} keeps it: "
                                "run the same command with --resume to continue") from None
    finally:
        if dist.started_group:
            torch.distributed.destroy_process_group()
    return {"model": model_name, "steps": run.state["step"], "best_dev": run.best_dev(),
            "seconds": time.perf_counter() - t_start, "parameters": model.num_parameters(), "output": str(out)}


def train_sequence(model_name: str, options: TrainOptions, preset: str | None, overrides: dict, steps: list[dict],
                   field_name: str) -> dict:
    """Train a model's named sequence of runs (e.g. `slp train slt --stage all`): each run starts
    from the previous one's weights; the earlier runs go to ``OUTPUT/stages/N-VALUE``, the last is
    the model in ``OUTPUT``. Re-running skips finished runs and resumes an interrupted one."""
    if options.dry_run:
        return train(model_name, options, preset, {**overrides, **steps[0]})
    out, prev, summary, runs = Path(options.output), options.init, {}, []
    log = options.log or (lambda line: None)
    for i, step in enumerate(steps):
        run_dir = out if i == len(steps) - 1 else out / "stages" / f"{i + 1}-{step[field_name]}"
        if (run_dir / "model.pt").exists():
            log(f"{field_name} {step[field_name]}: done ({run_dir}/model.pt)")
            runs.append({field_name: step[field_name], "output": str(run_dir), "done_before": True})
            prev = run_dir
            continue
        resume = (run_dir / "checkpoint.pt").exists()
        log(f"{field_name} {step[field_name]} ({i + 1} of {len(steps)}): {'resuming' if resume else 'training'} "
            f"in {run_dir}")
        step = dict(step)
        step_preset = step.pop("preset", None)  # a run of the sequence may have a preset of its own
        summary = train(model_name, replace(options, output=run_dir, resume=resume, init=None if resume else prev),
                        preset or step_preset, {**overrides, **step})
        runs.append({field_name: step[field_name], "output": str(run_dir), "done_before": False,
                     **{k: summary[k] for k in ("steps", "seconds", "best_dev")}})
        prev = run_dir
    # the last run's summary (its model is the output), with every run of the sequence under "runs"
    summary = summary or {"model": model_name, "steps": 0, "best_dev": {"name": "", "value": math.inf},
                          "seconds": 0.0, "parameters": 0, "output": str(out)}
    return {**summary, "runs": runs, "sequence": field_name}
