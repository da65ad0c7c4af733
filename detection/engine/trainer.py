"""The trainer every model shares: optimizer, warmup + cosine/step schedule, AMP on CUDA, clipping, JSON-lines
log, periodic evaluation, atomic last.pt/best.pt and exact resume; its task (detection.tasks) does the rest."""
from __future__ import annotations

import functools
import json
import math
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from datasets.core.atomic import atomic_open
from datasets.core.errors import UserError
from detection.config import Config, save_config
from detection.data.coco import collate
from detection.data.epoch_seed import EpochSeeded, seed_worker_state
from detection.data.repeat_factor import build_train_sampler, epoch_length
from detection.engine.checkpoint import load_checkpoint, load_weights, save_checkpoint
from detection.engine.ema import build_ema
from detection.engine.run_report import RunReport
from detection.engine.schedule import lr_multiplier, warmup_steps
from detection.engine.task import Task
from detection.utils.device import resolve_device, seed_everything


def build_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    t = cfg.train
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def seed_worker(worker_id: int, seed: int) -> None:
    """DataLoader worker_init_fn (module level, so spawn/forkserver can pickle it): seed the worker's RNGs
    and its own copy of the dataset's augmentation."""
    seed_worker_state(torch.utils.data.get_worker_info().dataset, worker_id, seed)


def pins_memory(device: torch.device | str | None) -> bool:
    """Whether a loader feeding `device` pins its batches (page-locked, for fast non-blocking copies): CUDA only."""
    return device is not None and torch.device(device).type == "cuda"


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int,
                context: str | None = None, collate_fn: Callable = collate, device: torch.device | str | None = None,
                persistent: bool = False, sampler: Sampler | None = None) -> DataLoader:
    """A DataLoader whose order and augmentation depend on `seed` alone (any start method in `context`).

    Batches are pinned when `device` is CUDA. `persistent` keeps the workers between passes (give it an
    EpochSeeded dataset and `restart` it each epoch, or later passes continue the first one's random streams).
    A `sampler` (e.g. a DistributedSampler's shard) replaces `shuffle`.
    """
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, collate_fn=collate_fn,
                      generator=torch.Generator().manual_seed(seed), pin_memory=pins_memory(device),
                      persistent_workers=persistent and num_workers > 0,
                      multiprocessing_context=context if num_workers > 0 else None,
                      worker_init_fn=functools.partial(seed_worker, seed=seed) if num_workers > 0 else None)


def restart(loader: DataLoader, seed: int) -> None:
    """Make the next pass over a used `loader` draw the order and augmentation a new make_loader(seed=seed) would.

    A new iterator first draws its workers' base seed from the generator, then the order; a persistent one draws
    only the order, so the base seed's draw is made here. The workers reseed through EpochSeeded.set_seed.
    """
    loader.generator.manual_seed(seed)
    if loader.persistent_workers:
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
    if isinstance(loader.dataset, EpochSeeded):
        loader.dataset.set_seed(seed)


def _epoch_of(line: str) -> float:
    """The epoch a metrics.jsonl line belongs to; a torn last line (a kill mid-write) counts as none kept."""
    try:
        return json.loads(line).get("epoch", 0)
    except (json.JSONDecodeError, AttributeError):
        return float("inf")


class Trainer:
    """Trains `cfg.model` on `cfg.data` into `cfg.output_dir`; `fit()` returns the final metrics.

    `task` (detection.tasks.build_task(cfg): a detector, the SiamFC tracker or the re-id embedder) supplies the
    data, the model, the loss call, the evaluation and the metric best.pt follows. `progress`: bars on a terminal
    (tqdm leaves them out when stderr is not one); a line per epoch always.
    """

    def __init__(self, cfg: Config, task: Task, resume: bool = False, progress: bool = True) -> None:
        self.cfg, self.progress, self.resumed = cfg, progress, resume
        self.out = Path(cfg.output_dir)
        self.run_report = RunReport(self.out, cfg.train.plots, cfg.train.tensorboard)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed)
        self.task = task
        self.train_set, self.val_set = self.task.datasets()
        self.categories = self.train_set.categories
        self.sampler = build_train_sampler(cfg.data, self.train_set)  # None: the loader shuffles (data.sampler)
        self.model = self.task.build_model(self.train_set, self.val_set, self.device, progress)
        if cfg.train.channels_last:  # oneDNN's (and tensor cores') own layout: no reorder around each conv
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, cfg)
        self.ema = build_ema(self.model, cfg.train.ema, cfg.train.ema_warmup) if cfg.train.ema > 0 else None
        self.iters_per_epoch = math.ceil(epoch_length(self.train_set, self.sampler) / cfg.train.batch_size)
        self.epoch, self.step, self.epochs = 0, 0, cfg.train.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.amp = cfg.train.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.best, self.metrics, self.seconds = -1.0, {}, 0.0
        self.epoch_seconds: list[float] = []  # of this process's epochs (train.max_minutes plans with them)
        self.kept_loader: DataLoader | None = None  # the training loader, kept so its workers persist
        if resume:
            self.load_state(self.out / "last.pt")

    def lr_factor(self, step: int) -> float:
        """Multiplier of train.lr at iteration `step` (detection.engine.schedule): warmup, then the schedule."""
        t, total = self.cfg.train, self.epochs * self.iters_per_epoch
        warmup = warmup_steps(t.warmup_epochs, self.iters_per_epoch, total)
        return lr_multiplier(step, total, warmup, t.scheduler, t.gamma, t.milestones)

    def loader(self, dataset: Dataset, shuffle: bool, seed: int) -> DataLoader:
        return make_loader(dataset, self.cfg.train.batch_size, shuffle, seed, self.cfg.data.num_workers,
                           collate_fn=self.task.collate, device=self.device)

    def train_loader(self, seed: int) -> DataLoader:
        """The training set's loader for the epoch seeded `seed`: made once, so that its workers persist, and
        restarted each later epoch to the order and augmentation a fresh loader of `seed` would give."""
        if self.sampler is not None:  # data.sampler=repeat_factor: the epoch's repeated, shuffled indices
            self.sampler.set_seed(seed)
        if self.kept_loader is None:
            self.kept_loader = make_loader(EpochSeeded(self.train_set), self.cfg.train.batch_size, True, seed,
                                           self.cfg.data.num_workers, collate_fn=self.task.collate,
                                           device=self.device, persistent=True, sampler=self.sampler)
            self.kept_loader.dataset.set_seed(seed)
        else:
            restart(self.kept_loader, seed)
        return self.kept_loader

    def train_one_epoch(self) -> dict:
        """One pass over the training set; every RNG is seeded from (seed, epoch) so resume is exact."""
        seed = self.cfg.seed + self.epoch
        seed_everything(seed)
        self.train_set.transform.set_random_seed(seed)
        self.model.train()
        start, seen, sums = time.time(), 0, {}
        bar = tqdm(self.train_loader(seed), desc=f"epoch {self.epoch + 1}/{self.epochs}",
                   disable=None if self.progress else True, leave=False)  # None: off when not a terminal
        for inputs, targets in bar:
            losses = self.train_step(inputs, targets)
            seen += len(targets)
            sums = {k: sums.get(k, 0.0) + v for k, v in losses.items() if k != "lr"}
            bar.set_postfix(loss=f"{losses['loss']:.3f}", lr=f"{losses['lr']:.4g}")
            if self.step % self.cfg.train.log_every == 0:
                self.log({"type": "train", "epoch": self.epoch + 1, "step": self.step, **losses})
        seconds = time.time() - start
        means = {k: round(v / max(1, len(bar)), 5) for k, v in sums.items()}  # loss and each loss term
        return {"type": "epoch", "epoch": self.epoch + 1, **means,
                "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 2), "images_per_s": round(seen / max(seconds, 1e-9), 2)}

    def train_step(self, inputs, targets: list) -> dict:
        """One optimizer step on a batch of the task's `collate`; returns the loss, its terms and the lr."""
        batch = self.task.to_device(inputs, targets, self.device, self.step)
        with torch.autocast(self.device.type, enabled=self.amp):
            losses = self.task.losses(self.model, batch)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            parts = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise UserError(f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step} ({parts}); "
                            f"training stopped, last good checkpoint: {self.out / 'last.pt'} (lower train.lr?)")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.network)
        self.step += 1
        return {"loss": loss.item(), **{k: round(v.item(), 5) for k, v in losses.items()},
                "lr": self.optimizer.param_groups[0]["lr"]}

    def log(self, record: dict) -> None:
        with open(self.out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.run_report.record(record)

    def start_log(self) -> None:
        """A fresh run starts metrics.jsonl empty; a resumed one keeps only the epochs its checkpoint holds."""
        path = self.out / "metrics.jsonl"
        kept = []
        if self.resumed and path.is_file():
            kept = [line for line in path.read_text().splitlines() if _epoch_of(line) <= self.epoch]
        with atomic_open(path, "w") as handle:
            handle.writelines(line + "\n" for line in kept)

    def should_evaluate(self) -> bool:
        every = self.cfg.train.eval_every
        return self.val_set is not None and (self.epoch == self.epochs or (every > 0 and self.epoch % every == 0))

    def fit(self) -> dict:
        """Train the remaining epochs; evaluate, log and checkpoint after each. Returns final metrics."""
        self.out.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.out / "config.yaml")
        self.start_log()
        if getattr(self.task, "pretrained_record", None) and not self.resumed:  # model.pretrained=CKPT.pt
            self.log(self.task.pretrained_record)
        while self.epoch < self.epochs:
            record = self.train_one_epoch()
            self.epoch += 1
            self.seconds += record["seconds"]
            self.epoch_seconds.append(record["seconds"])
            self.fit_time_budget()
            evaluation = self.evaluate() if self.should_evaluate() else {}
            metrics = {k: v for k, v in evaluation.items() if k != "per_class"}
            self.log({**record, **evaluation})
            self.save(metrics)
            self.report(record, metrics)
        self.kept_loader = None  # its workers stop
        self.run_report.close()
        return self.metrics

    def report(self, record: dict, metrics: dict) -> None:
        """One console line per epoch."""
        line = (f"epoch {self.epoch}/{self.epochs}  loss {record['loss']:.4f}  "
                f"{record['images_per_s']:.1f} img/s  {record['seconds']:.1f}s")
        if metrics:
            line += "".join(f"  {key} {metrics[key]:.4f}" for key in self.task.report_keys)
        tqdm.write(line)

    def fit_time_budget(self) -> None:
        """With train.max_minutes, plan again after each epoch the epochs (and so the schedule) that fit the budget,
        at most train.epochs. An epoch is taken to last as long as this run's epochs after its first (the first
        also starts the loader and the kernels): planned from the first alone, a slow start would leave part of
        the budget unused."""
        budget = self.cfg.train.max_minutes * 60
        if budget <= 0:
            return
        per_epoch = statistics.mean(self.epoch_seconds[1:] or self.epoch_seconds)
        fits = self.epoch + int(max(0.0, budget - self.seconds) // per_epoch)
        self.epochs = max(self.epoch, min(self.cfg.train.epochs, fits))

    @property
    def network(self) -> torch.nn.Module:
        """The model being trained, without a wrapper (DistributedDataParallel in detection.engine.distributed)."""
        return self.model

    @property
    def inference_model(self) -> torch.nn.Module:
        """What is evaluated and saved as the checkpoint's model: the EMA weights when train.ema is on."""
        return self.ema.module if self.ema is not None else self.network

    def evaluate(self) -> dict:
        """The task's numbers on the val set: for detectors the 12 COCO numbers plus "per_class" (AP, AP50,
        AP75 of each category; the run report draws the pictures), for SiamFC success_auc and precision_20."""
        return self.task.evaluate(self)

    def save(self, metrics: dict) -> None:
        """last.pt every epoch (with optimizer state); best.pt when the task's best_metric (bbox_mAP,
        success_auc) improves (or no val set)."""
        score = metrics.get(self.task.best_metric, -1.0)
        improved = self.val_set is None or (bool(metrics) and score > self.best)
        if metrics:
            self.metrics = metrics
        if improved:
            self.best = max(self.best, score)
            save_checkpoint(self.out / "best.pt", self.state(training=False))
        save_checkpoint(self.out / "last.pt", self.state(training=True))

    def state(self, training: bool) -> dict:
        state = {"config": self.cfg.to_dict(), "categories": self.categories,
                 "model": self.inference_model.state_dict(), "epoch": self.epoch, "epochs": self.epochs,
                 "step": self.step, "metrics": self.metrics, "best_metric": self.best,
                 "train_seconds": round(self.seconds, 2)}
        if training:
            state.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                         scaler=self.scaler.state_dict())
            if self.ema is not None:  # "model" holds the average; resuming needs the trained weights too
                state.update(raw_model=self.network.state_dict(), ema_updates=int(self.ema.n_averaged))
        return state

    def load_model_weights(self, state: dict, path: Path) -> None:
        """The trained weights, and with train.ema the average and its update count."""
        if self.ema is None:
            load_weights(self.model, state["model"], path)
            return
        if "raw_model" not in state:
            raise UserError(f"{path}: was trained without train.ema; resume it with train.ema=0")
        load_weights(self.model, state["raw_model"], path)
        load_weights(self.ema.module, state["model"], path)
        self.ema.n_averaged.fill_(state["ema_updates"])

    def load_state(self, path: Path) -> None:
        """Restore everything `state(training=True)` saved, to continue exactly where it stopped."""
        state = load_checkpoint(path)
        if "optimizer" not in state:
            raise UserError(f"{path}: has no training state to resume from (use last.pt)")
        if [c["id"] for c in state["categories"]] != [c["id"] for c in self.categories]:
            raise UserError(f"{path}: categories differ from {self.cfg.data.train.annotations}")
        self.load_model_weights(state, path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.seconds = state["epoch"], state["step"], state["train_seconds"]
        changed = self.cfg.train.epochs != state["config"]["train"]["epochs"]  # extended by an override
        self.epochs = self.cfg.train.epochs if changed else state["epochs"]
        self.best, self.metrics = state["best_metric"], state["metrics"]
