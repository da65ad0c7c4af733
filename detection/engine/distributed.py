"""Training on N Ray Train workers (TorchTrainer, DistributedDataParallel): the same Trainer on every worker, each on
its shard of every batch; rank 0 writes the files single-process training writes and reports checkpoints to Ray."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from datasets.core.errors import UserError
from detection.config import Config, config_from_dict
from detection.data.repeat_factor import epoch_length
from detection.engine.task import Task
from detection.engine.trainer import Trainer, make_loader
from detection.utils.device import seed_everything

RUN_NAME = "train"  # Ray's run folder: OUTPUT_DIR/ray/train/ (its reported checkpoints)


class DistributedTrainer(Trainer):
    """The Trainer as worker `rank` of `world`: DDP model, a DistributedSampler shard of each global batch
    (train.batch_size / world images), losses averaged over the workers, files and evaluation on rank 0 only.

    `task`: build_task(cfg), built in the worker. `resume_from`: a last.pt to continue from exactly
    (OUTPUT_DIR/last.pt, or the one Ray restored).
    """

    def __init__(self, cfg: Config, task: Task, rank: int, world: int, device: torch.device,
                 resume_from: Path | None = None, progress: bool = True) -> None:
        self.rank, self.world, self.images = rank, world, 0
        quiet = cfg if rank == 0 else dataclasses.replace(  # no pictures or TensorBoard files from other ranks
            cfg, train=dataclasses.replace(cfg.train, plots=False, tensorboard=False))
        super().__init__(dataclasses.replace(quiet, device=str(device)), task, progress=progress and rank == 0)
        self.cfg = cfg  # the user's config (device: auto ...) is what config.yaml and the checkpoints keep
        self.local_batch = cfg.train.batch_size // world
        per_worker = math.ceil(epoch_length(self.train_set, self.sampler) / world)
        self.iters_per_epoch = math.ceil(per_worker / self.local_batch)
        if resume_from is not None:
            self.resumed = True
            self.load_state(resume_from)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.model = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)

    @property
    def network(self) -> torch.nn.Module:
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def train_loader(self, seed: int) -> DataLoader:
        """This rank's shard of the training set, in an order seeded by (seed, epoch), augmentation seeded by
        (seed, epoch, rank); a new loader each epoch (validation on rank 0 uses the whole set, as in-process)."""
        if self.rank:  # train_one_epoch seeded rank 0's generators; the others draw their own
            seed = seed + 100_003 * self.rank
            seed_everything(seed)
            self.train_set.transform.set_random_seed(seed)
        if self.sampler is not None:  # data.sampler=repeat_factor: every rank draws the epoch's list, takes a shard
            sampler = self.sampler.shard(self.rank, self.world)
            sampler.set_seed(self.cfg.seed + self.epoch)
        else:
            sampler = DistributedSampler(self.train_set, num_replicas=self.world, rank=self.rank, shuffle=True,
                                         seed=self.cfg.seed)
            sampler.set_epoch(self.epoch)
        return make_loader(self.train_set, self.local_batch, False, seed, self.cfg.data.num_workers,
                           collate_fn=self.task.collate, device=self.device, sampler=sampler)

    def train_step(self, inputs, targets: list) -> dict:
        """One DDP step on this rank's shard; the loss and its terms come back averaged over the workers."""
        self.images += len(targets)
        losses = super().train_step(inputs, targets)
        keys = [key for key in losses if key != "lr"]
        values = self.all_reduce([losses[key] for key in keys], dist.ReduceOp.SUM) / self.world
        mean = {key: (value if key == "loss" else round(value, 5)) for key, value in zip(keys, values.tolist())}
        return {**mean, "lr": losses["lr"]}

    def train_one_epoch(self) -> dict:
        """The epoch's record over all workers: the slowest worker's time and every worker's images."""
        self.images = 0
        record = super().train_one_epoch()
        seconds = self.all_reduce([record["seconds"]], dist.ReduceOp.MAX)[0].item()
        images = self.all_reduce([self.images], dist.ReduceOp.SUM)[0].item()
        return {**record, "seconds": round(seconds, 2), "images_per_s": round(images / max(seconds, 1e-9), 2)}

    def all_reduce(self, values: list[float], op: dist.ReduceOp) -> torch.Tensor:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return tensor.cpu()

    def evaluate(self) -> dict:
        """Rank 0 evaluates (the others wait at the next ray.train.report, a barrier)."""
        return super().evaluate() if self.rank == 0 else {}

    def log(self, record: dict) -> None:
        if self.rank == 0:
            super().log(record)

    def start_log(self) -> None:
        if self.rank == 0:
            super().start_log()

    def save(self, metrics: dict) -> None:
        if self.rank == 0:
            super().save(metrics)

    def report(self, record: dict, metrics: dict) -> None:
        """Rank 0: the console line, then metrics and a checkpoint (a folder holding last.pt) to Ray; the others
        report the same metrics without a checkpoint. Every rank calls ray.train.report once per epoch."""
        import ray.train

        summary = {"epochs": self.epoch, "steps": self.step, "train_seconds": round(self.seconds, 1),
                   "loss": record["loss"], **self.metrics}
        if self.rank != 0:
            ray.train.report(summary)
            return
        super().report(record, metrics)
        with tempfile.TemporaryDirectory(prefix="detpipe-ckpt-") as folder:
            link_or_copy(self.out / "last.pt", Path(folder) / "last.pt")
            ray.train.report(summary, checkpoint=ray.train.Checkpoint.from_directory(folder))


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def train_worker(payload: dict) -> None:
    """The loop every Ray Train worker runs: the DistributedTrainer's fit on the task payload["build_task"] makes,
    from Ray's restored checkpoint when Ray restarted the workers after a failure, else from OUTPUT_DIR/last.pt with
    --resume, else from scratch."""
    import ray.train
    import ray.train.torch

    for name in ("ray.train", ""):  # Ray Train's INFO lines (a line per report) off; warnings stay
        logging.getLogger(name).setLevel(logging.WARNING)
    if Path(payload["cwd"]).is_dir():  # the config's relative paths (data, output_dir) mean what they meant there
        os.chdir(payload["cwd"])
    cfg = config_from_dict(payload["config"])
    context = ray.train.get_context()
    torch.set_num_threads(max(1, int(cfg.trainer.cpus_per_worker)))
    args = dict(cfg=cfg, task=payload["build_task"](cfg), rank=context.get_world_rank(), world=context.get_world_size(),
                device=ray.train.torch.get_device(), progress=payload["progress"])
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            trainer = DistributedTrainer(**args, resume_from=Path(folder) / "last.pt")
    else:
        last = Path(cfg.output_dir) / "last.pt"
        trainer = DistributedTrainer(**args, resume_from=last if payload["resume"] else None)
    trainer.fit()


def check_devices(cfg: Config) -> None:
    """Errors a user can act on, before Ray starts: GPU workers without enough CUDA devices here."""
    workers = cfg.trainer.num_workers
    if cfg.trainer.use_gpu and not os.environ.get("RAY_ADDRESS") and torch.cuda.device_count() < workers:
        raise UserError(f"trainer.use_gpu=true needs one CUDA device per worker: trainer.num_workers={workers}, "
                        f"{torch.cuda.device_count()} CUDA devices here (use trainer.use_gpu=false for CPU workers, "
                        f"or a Ray cluster with GPUs through RAY_ADDRESS)")


def check_cluster(cfg: Config) -> None:
    """A Ray cluster (RAY_ADDRESS) must hold the workers' CPUs and GPUs, else Ray would wait for them forever."""
    import ray

    have = ray.cluster_resources()
    t = cfg.trainer
    for name, need in {"CPU": t.num_workers * t.cpus_per_worker, "GPU": t.num_workers if t.use_gpu else 0}.items():
        if have.get(name, 0) < need:
            raise UserError(f"the Ray cluster at {os.environ.get('RAY_ADDRESS')} has {have.get(name, 0):g} {name}s; "
                            f"trainer.num_workers={t.num_workers} needs {need:g}")


def start_ray(cfg: Config) -> bool:
    """Connect to the cluster RAY_ADDRESS names, or start Ray here with enough CPUs for the workers; quietly (no
    dashboard, warnings only, worker lines without Ray's prefix). True when this call connected or started it."""
    import ray

    if ray.is_initialized():
        return False
    quiet = dict(logging_level=logging.ERROR, logging_config=ray.LoggingConfig(encoding="TEXT", log_level="ERROR"))
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**quiet)
        return True
    need = math.ceil(cfg.trainer.num_workers * cfg.trainer.cpus_per_worker)
    ray.init(num_cpus=max(os.cpu_count() or 1, need), include_dashboard=False, **quiet)
    return True


def fit_on_ray(cfg: Config, build_task: Callable[[Config], Task], resume: bool = False,
               progress: bool = True) -> dict:
    """Train `cfg` on cfg.trainer.num_workers Ray Train workers, each with the task `build_task(cfg)` makes there
    (detection.tasks.build_task); returns the last epoch's summary (epochs, steps, train_seconds, loss and the
    evaluation's numbers). Ray's own files go to OUTPUT_DIR/ray/."""
    try:
        import ray
        from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError as exc:
        raise UserError(f"trainer.num_workers={cfg.trainer.num_workers} trains through Ray Train, which cannot be "
                        f"imported here ({exc}); install it: pip install 'ray[train]'") from None

    check_devices(cfg)
    out = Path(cfg.output_dir).resolve()
    if resume and not (out / "last.pt").is_file():
        raise UserError(f"checkpoint not found: {out / 'last.pt'} (nothing to resume)")
    shutil.rmtree(out / "ray" / RUN_NAME, ignore_errors=True)  # a fresh Ray run: --resume reads last.pt itself
    t = cfg.trainer
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")  # workers' print as is (Ray Train passes these on)
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")  # spot-node notices: not for a local run
    started = start_ray(cfg)
    try:
        if os.environ.get("RAY_ADDRESS"):
            check_cluster(cfg)
        trainer = TorchTrainer(
            train_worker, train_loop_config={"config": cfg.to_dict(), "build_task": build_task, "resume": resume,
                                               "progress": progress, "cwd": os.getcwd()},
            torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=t.num_workers, use_gpu=t.use_gpu,
                                         resources_per_worker={"CPU": t.cpus_per_worker}),
            run_config=RunConfig(name=RUN_NAME, storage_path=str(out / "ray"),
                                 checkpoint_config=CheckpointConfig(num_to_keep=1),
                                 failure_config=FailureConfig(max_failures=t.max_failures),
                                 logging_config=LoggingConfig(log_level="WARNING")))
        return fit_or_user_error(trainer).metrics
    finally:
        if started:
            ray.shutdown()


def fit_or_user_error(trainer):
    """trainer.fit(); a worker's UserError (a bad file, a diverging loss) comes back as that UserError."""
    from ray.train import WorkerGroupError

    try:
        return trainer.fit()
    except WorkerGroupError as exc:
        for failure in exc.worker_failures.values():
            if isinstance(failure, UserError):
                raise UserError(str(failure)) from None
            cause = getattr(failure, "cause", None)
            if isinstance(cause, UserError):
                raise UserError(str(cause)) from None
        raise
