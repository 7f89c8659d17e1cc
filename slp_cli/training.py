"""ONE training loop for every model (`slp train <model>`): CPU, one CUDA GPU with bf16 autocast,
or several GPUs/processes with DistributedDataParallel (`torchrun --nproc_per_node N -m slp_cli
train ...`; gloo on CPU, NCCL on CUDA).

A run directory holds:

* ``config.json``   the model name, its config and the run's options (written at the start);
* ``checkpoint.pt`` the latest state: weights, optimizer, scheduler, step, best dev loss, RNG
  states (every ``checkpoint_every`` steps and at the end; ``--resume`` continues exactly from it);
* ``best.pt``       the weights with the lowest dev loss so far (when there is a dev split);
* ``metrics.csv``   long format: step, split, name, value (train losses, dev losses, lr, frames/s);
* ``loss.png``      the loss curves;
* ``model.pt``      the final model (best dev weights, else the last), written LAST by rename, so
  its presence means the run finished (make skips the stage).

Everything a model needs to rebuild itself is in its config (see slp_cli/models/__init__.py).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .artifacts import load
from .data.loader import BucketBatchSampler
from .errors import SlpError
from .models import CHECKPOINT_SCHEMA, SlpModel, config_dict, get_model_class


@dataclass
class TrainingConfig:
    """Loop settings every model config inherits; presets and papers set the values."""

    batch_size: int = 32
    max_steps: int = 10000
    lr: float = 2e-4
    grad_clip: float = 1.0
    eval_every: int = 500
    checkpoint_every: int = 1000
    patience: int = 20  # evaluations without a better dev loss before stopping early; 0: never
    log_every: int = 10


@dataclass
class TrainOptions:
    """What one `slp train` invocation asks for (model configuration aside)."""

    output: Path
    data: list[Path]
    langs: list[str] | None = None
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    dry_run: bool = False
    workers: int | None = None
    amp: bool = True
    progress: bool = True
    log: object = None  # a callable taking one line for humans (the CLI passes its console)
    extra: dict = field(default_factory=dict)  # paths etc. a model's from_data needs (e.g. a tokenizer)


# --- distributed / device ------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Read torchrun's environment; start the process group (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dist = Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name == "cuda":
        if not torch.cuda.is_available():
            raise SlpError("--device cuda asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    elif device_name == "cpu":
        device = torch.device("cpu")
    else:
        raise SlpError(f"unknown device {device_name!r}; use auto, cpu or cuda")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist, device


def _all_mean(value: float, dist: Dist, device) -> float:
    if dist.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return float(t.item()) / dist.world


def to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


# --- data ------------------------------------------------------------------------------------

def load_splits(paths: list[Path], langs: list[str] | None) -> tuple[list, list, dict]:
    """Train and dev samples of one or more artifacts (e.g. one per language), filtered by language."""
    arts = [load(p) for p in paths]
    samples = [s for a in arts for s in a]
    present = sorted({s.lang for s in samples})
    if langs:
        missing = [l for l in langs if l not in present]
        if missing:
            raise SlpError(f"{', '.join(map(str, paths))}: no samples of language(s) {', '.join(missing)}; "
                           f"the data has {', '.join(present) or 'no language labels'}")
        samples = [s for s in samples if s.lang in langs]
    train = [s for s in samples if s.split == "train"]
    dev = [s for s in samples if s.split == "dev"]
    if not train:
        raise SlpError(f"{', '.join(map(str, paths))}: no train-split samples to train on")
    for s in train + dev:
        if np.isinf(s.pose).any():
            raise SlpError(f"{paths[0]}: sample '{s.id}' has inf values in its poses; fix or re-normalize it")
    info = {"fps": arts[0].fps, "normalized": all(a.normalized for a in arts), "langs": sorted({s.lang for s in train}),
            "stats": arts[0].stats, "normalization": arts[0].normalization}
    return train, dev, info


# --- checkpoints -----------------------------------------------------------------------------

def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _model_blob(model: SlpModel) -> dict:
    return {"schema": CHECKPOINT_SCHEMA, "model": model.name, "config": config_dict(model.config),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "slp_version": __version__}


def read_checkpoint(out: Path, model_name: str) -> dict:
    file = out / "checkpoint.pt"
    if not file.exists():
        raise SlpError(f"{out}: nothing to resume (no checkpoint.pt); start without --resume")
    blob = torch.load(file, map_location="cpu", weights_only=False)
    if blob.get("schema") != CHECKPOINT_SCHEMA:
        raise SlpError(f"{file}: not an slp checkpoint")
    if blob["model"] != model_name:
        raise SlpError(f"{out}: holds a '{blob['model']}' run; cannot resume it as '{model_name}' "
                       f"(use `slp train {blob['model']} --resume` or another -o)")
    return blob


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
        tmp = out_png.with_name(out_png.stem + ".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, out_png)


# --- the loop ------------------------------------------------------------------------------

def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def evaluate(model: SlpModel, loader, device, autocast) -> dict[str, float]:
    """Mean of every validation_step value over the dev set, weighted by batch size."""
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in loader:
        batch = to_device(batch, device)
        with autocast():
            out = model.validation_step(batch)
        n = int(batch.get("batch_size", 1)) if isinstance(batch, dict) else 1
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + float(v) * n
        count += n
    model.train()
    return {k: v / max(count, 1) for k, v in totals.items()}


def train(model_name: str, options: TrainOptions, preset: str = "default", overrides: dict | None = None) -> dict:
    """Train (or resume) a registered model; returns a summary of the run."""
    log = options.log or (lambda line: None)
    out = Path(options.output)
    blob = read_checkpoint(out, model_name) if options.resume else None
    cls = get_model_class(model_name)
    dist, device = setup_distributed(options.device)
    if blob is None and not options.dry_run and ((out / "checkpoint.pt").exists() or (out / "model.pt").exists()):
        raise SlpError(f"{out}: already holds a training run; add --resume to continue it, or choose another -o")

    train_samples, dev_samples, info = load_splits([Path(p) for p in options.data], options.langs)
    if blob is not None:
        # The architecture comes from the checkpoint; loop settings (e.g. a larger --max-steps)
        # may change on resume.
        loop_keys = {f.name for f in fields(TrainingConfig)}
        config = cls.Config(**{**blob["config"], **{k: v for k, v in (overrides or {}).items()
                                                    if k in loop_keys and v is not None}})
        model = cls(config)
    else:
        config = cls.make_config(preset, overrides)
        _seed_everything(options.seed)
        model = cls.from_data(config, train_samples, **options.extra)
        # A model that outputs poses records their frame rate and normalization, so that its
        # outputs are written with the right header without its training data.
        for key in ("fps", "normalization"):
            if hasattr(model.config, key):
                setattr(model.config, key, type(getattr(model.config, key))(info[key]))
    if options.dry_run:
        return {"model": model_name, "preset": preset, "parameters": model.num_parameters(),
                "config": config_dict(config), "train_samples": len(train_samples), "dev_samples": len(dev_samples)}

    batch_size = config.batch_size
    train_ds = model.make_dataset(train_samples)
    if len(train_ds) < batch_size:
        raise SlpError(f"{options.data[0]}: {len(train_ds)} training sequences are too few for a batch of "
                       f"{batch_size}; lower --batch-size or use more data")
    dev_ds = model.make_dataset(dev_samples) if dev_samples else None
    workers = options.workers if options.workers is not None else (2 if device.type == "cuda" else 0)
    sampler = BucketBatchSampler(train_ds.lengths, batch_size, seed=options.seed, rank=dist.rank, world_size=dist.world)
    # Each loader draws its worker seed from its own generator, not the global RNG, so that an
    # evaluation or a resumed epoch does not shift the model's random stream (exact resume).
    loader_kw = dict(collate_fn=model.collate, num_workers=workers, pin_memory=device.type == "cuda",
                     persistent_workers=workers > 0, generator=torch.Generator().manual_seed(options.seed))
    train_loader = torch.utils.data.DataLoader(train_ds, batch_sampler=sampler, **loader_kw)
    dev_loader = None
    if dev_ds is not None and len(dev_ds):
        dev_sampler = BucketBatchSampler(dev_ds.lengths, batch_size, shuffle=False, drop_last=False)
        dev_loader = torch.utils.data.DataLoader(dev_ds, batch_sampler=dev_sampler, **loader_kw)
    per_epoch = len(sampler)

    model.to(device)
    optimizer, scheduler = model.configure_optimizers()
    state = {"step": 0, "best": math.inf, "bad_evals": 0}
    if blob is not None:
        model.load_state_dict(blob["state_dict"])
        optimizer.load_state_dict(blob["optimizer"])
        if scheduler is not None and blob.get("scheduler"):
            scheduler.load_state_dict(blob["scheduler"])
        state.update(blob["state"])
        _set_rng_state(blob["rng"])
        log(f"resuming {model_name} from step {state['step']}")
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    use_amp = options.amp and device.type == "cuda"  # bf16 autocast on CUDA; full precision on CPU
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext

    run_info = {"model": model_name, "preset": preset, "config": config_dict(config),
                "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
                            if k not in ("log", "extra")},
                "data": info["langs"], "world_size": dist.world, "device": str(device), "slp_version": __version__}
    metrics = None
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(run_info, indent=2, default=str))
        metrics = MetricLog(out, state["step"] if blob is not None else None)

    def save_checkpoint() -> None:
        if dist.main:
            _atomic_save({**_model_blob(model), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict() if scheduler is not None else None,
                          "state": dict(state), "rng": _rng_state(), "run": run_info}, out / "checkpoint.pt")

    def run_eval() -> None:
        if dev_loader is None:
            return
        values = evaluate(model, dev_loader, device, autocast)
        if metrics:
            metrics.write(state["step"], "dev", values)
        if cls.scheduler_interval == "eval" and scheduler is not None:
            scheduler.step(values["loss"])
        if values["loss"] < state["best"]:
            state["best"], state["bad_evals"] = values["loss"], 0
            if dist.main:
                _atomic_save(_model_blob(model), out / "best.pt")
        else:
            state["bad_evals"] += 1

    progress = None
    if dist.main and options.progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from .cli.common import console

        progress = Progress(TextColumn(f"train {model_name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} frames/s"),
                            TimeRemainingColumn(), console=console, transient=False)
        task = progress.add_task("train", total=config.max_steps, completed=state["step"], loss="-", speed="-")
        progress.start()

    model.train()
    window: dict[str, float] = {}
    frames, t_window, t_start = 0, time.perf_counter(), time.perf_counter()
    stop = False
    try:
        while state["step"] < config.max_steps and not stop:
            epoch, offset = divmod(state["step"], per_epoch)
            sampler.set_epoch(epoch, offset)
            for batch in train_loader:
                model.on_step_start(state["step"])
                batch = to_device(batch, device)
                with autocast():
                    out_vals = net(batch)
                loss = out_vals["loss"]
                if not torch.isfinite(loss):
                    raise SlpError(f"{model_name}: the loss became {loss.item()} at step {state['step']}; "
                                   f"lower the learning rate or check the data for extreme values")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                if cls.scheduler_interval == "step" and scheduler is not None:
                    scheduler.step()
                state["step"] += 1
                frames += int(batch.get("num_frames", 0)) if isinstance(batch, dict) else 0
                for k, v in out_vals.items():
                    window[k] = window.get(k, 0.0) + float(v.detach())
                step = state["step"]
                if step % config.log_every == 0 or step == config.max_steps:
                    n = config.log_every if step % config.log_every == 0 else step % config.log_every
                    values = {k: _all_mean(v / n, dist, device) for k, v in window.items()}
                    speed = _all_mean(frames / max(time.perf_counter() - t_window, 1e-9), dist, device) * dist.world
                    values.update(lr=optimizer.param_groups[0]["lr"], frames_per_s=speed)
                    if metrics:
                        metrics.write(step, "train", values)
                    if progress:
                        progress.update(task, completed=step, loss=f"{values['loss']:.4g}", speed=f"{speed:,.0f}")
                    window, frames, t_window = {}, 0, time.perf_counter()
                if step % config.eval_every == 0 or step == config.max_steps:
                    run_eval()
                    if config.patience and state["bad_evals"] >= config.patience:
                        log(f"early stop at step {step}: no better dev loss in {config.patience} evaluations")
                        stop = True
                if step % config.checkpoint_every == 0:
                    save_checkpoint()
                if step >= config.max_steps or stop:
                    break
    finally:
        if progress:
            progress.stop()
    save_checkpoint()
    summary = {"model": model_name, "steps": state["step"], "best_dev_loss": state["best"],
               "seconds": time.perf_counter() - t_start, "parameters": model.num_parameters(), "output": str(out)}
    if dist.main:
        final = torch.load(out / "best.pt", weights_only=False) if (out / "best.pt").exists() else _model_blob(model)
        final["run"] = run_info
        metrics.plot(out / "loss.png", f"{model_name} ({preset})")
        _atomic_save(final, out / "model.pt")
    if dist.world > 1:
        torch.distributed.barrier()
    return summary
