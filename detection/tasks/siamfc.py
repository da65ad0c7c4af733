"""Training the SiamFC tracker: pairs from COCO objects and sequence folders, the logistic loss, and a validation
that tracks sequences made from the val split (OTB success AUC, precision@20); best.pt follows success_auc."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from datasets.core.atomic import write_text
from datasets.core.errors import UserError
from detection.config import Config, family_of
from detection.data.coco import load_coco
from detection.tracking.metrics import success_plot
from detection.tracking.otb import Sequence, evaluate_sequences, find_sequences
from detection.tracking.pairs import PairDataset, coco_clips, collate_pairs, sequence_clips
from detection.tracking.siamfc_options import SiamFCOptions, ValOptions

if TYPE_CHECKING:
    from detection.engine.trainer import Trainer


@dataclass
class ValSequences:
    """The validation's sequences: a folder of them (data.val.sequences), or made from a COCO split into `cache`
    when first needed (datasets.synthetic.sequences, seeded: the same sequences for every evaluation and resume)."""

    folder: str = ""
    annotations: str = ""
    images: str = ""
    cache: Path | None = None
    options: ValOptions | None = None
    seed: int = 0

    def load(self) -> list[Sequence]:
        if self.folder:
            return find_sequences(self.folder)
        recipe = {"source": str(Path(self.annotations).resolve()), "seed": self.seed,
                  "sequences": self.options.sequences, "frames": self.options.frames, "size": self.options.size,
                  "objects": self.options.objects}
        stamp = self.cache / "recipe.json"
        if not (stamp.is_file() and json.loads(stamp.read_text()) == recipe):
            from datasets.synthetic.sequences import make_sequences

            shutil.rmtree(self.cache, ignore_errors=True)  # made by another recipe
            make_sequences(self.annotations, self.images, self.cache, self.options.sequences, self.seed,
                           frames=self.options.frames, objects=self.options.objects, size=self.options.size,
                           mode="crossing", background="dataset")
            write_text(stamp, json.dumps(recipe))
        return find_sequences(self.cache)


class SiamFCTask:
    """The SiamFC tracker (TRACKERS entry with task "siamfc"); best.pt follows success_auc."""

    best_metric = "success_auc"
    report_keys = ("success_auc", "precision_20")
    collate = staticmethod(collate_pairs)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.options: SiamFCOptions = cfg.model.options or SiamFCOptions()

    def datasets(self) -> tuple[PairDataset, ValSequences | None]:
        train, val = self.cfg.data.train, self.cfg.data.val
        if not train.annotations and not train.sequences:
            raise UserError("config keys 'data.train.annotations' and 'data.train.sequences' are empty: point one "
                            "at a COCO json or a folder of sequences")
        clips, categories = coco_clips(train.annotations, train.images) if train.annotations else ([], [])
        if train.sequences:
            clips += sequence_clips(train.sequences)
        pairs = PairDataset(clips, self.options, categories, self.cfg.seed)
        if val.sequences:
            find_sequences(val.sequences)  # checked now, not after the first epoch
            return pairs, ValSequences(folder=val.sequences)
        if not val.annotations:
            return pairs, None
        load_coco(val.annotations)
        if not Path(val.images).is_dir():
            raise UserError(f"images folder not found: {val.images}")
        return pairs, ValSequences(annotations=val.annotations, images=val.images, seed=self.cfg.seed,
                                   cache=Path(self.cfg.output_dir) / "val_sequences", options=self.options.val)

    def build_model(self, train_set: PairDataset, val_set: ValSequences | None, device: torch.device,
                    progress: bool) -> torch.nn.Module:
        return family_of(self.cfg.model.name).build_network(self.cfg.model).to(device)

    def to_device(self, inputs: tuple[torch.Tensor, torch.Tensor], targets: list[dict], device: torch.device,
                  step: int) -> tuple:
        exemplars, searches = (t.to(device, non_blocking=True) for t in inputs)
        return exemplars, searches, [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]

    def losses(self, model: torch.nn.Module, batch: tuple) -> dict[str, torch.Tensor]:
        return model(*batch)

    def evaluate(self, trainer: "Trainer") -> dict:
        """One-pass tracking of every validation sequence: mean success_auc, precision_20 and mean_iou, and the
        tracker's frames/s; with train.plots, success_plot.png (mean success and precision curves)."""
        tracker = family_of(self.cfg.model.name)(trainer.inference_model, self.options, trainer.device)
        found = evaluate_sequences(tracker, trainer.val_set.load(), trainer.progress)
        if self.cfg.train.plots:
            success_plot(found, trainer.out / "success_plot.png", label=f"epoch {trainer.epoch}")
        return {"success_auc": round(found["success_auc"], 5), "precision_20": round(found["precision_20"], 5),
                "mean_iou": round(found["mean_iou"], 5), "val_sequences": found["sequences"],
                "val_fps": round(found["fps"], 1)}
