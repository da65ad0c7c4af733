"""One performance table of every detector family and the SiamFC tracker, written to benchmarks/README.md.

Per row: parameters, FLOPs, train images/s, inference ms/image at batch 1 and 8 with PyTorch and ONNX Runtime (the
trained checkpoint exported by detection.deploy) on the CPU, and on the GPU when there is one, and accuracy on the
synthetic benchmark after the same training budget. Also writes results.json beside it; prints one JSON line.
The hand-written sections of the file being replaced, from the KEEP line on, are kept as they are.
Usage: python benchmarks/perf_table.py [--minutes 1.5] [--families faster_rcnn,ssd,yolo,fast_rcnn,rcnn,siamfc]
       [--images 500] [--threads 0] [--quick] [--out benchmarks/README.md]
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_export  # noqa: E402
import bench_families  # noqa: E402
import bench_rcnn  # noqa: E402
import bench_siamfc  # noqa: E402
from datasets.core.atomic import atomic_path  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.deploy.check import sample_images  # noqa: E402
from detection.deploy.runtime import load_onnx  # noqa: E402
from detection.deploy.siamfc import export_siamfc  # noqa: E402
from detection.deploy.siamfc_runtime import compare_siamfc, exported_tracker, load_siamfc, sample_crops  # noqa: E402
from detection.models.external_proposals import as_uint8  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402
from detection.tracking.load import load_tracker  # noqa: E402
from detection.tracking.otb import evaluate_sequences  # noqa: E402

FAMILIES = ("faster_rcnn", "ssd", "yolo", "fast_rcnn", "rcnn", "siamfc")
BENCH = {"faster_rcnn": bench_families, "ssd": bench_families, "yolo": bench_families, "fast_rcnn": bench_rcnn,
         "rcnn": bench_rcnn}  # whose recipe and overrides train the family (the same as that benchmark's)
TITLES = {"faster_rcnn": "Faster R-CNN", "ssd": "SSD", "yolo": "YOLO", "fast_rcnn": "Fast R-CNN", "rcnn": "R-CNN",
          "siamfc": "SiamFC tracker"}
SIZE = bench_families.SIZE
SIAMFC = {"images": 400, "sequences": 8, "frames": 80, "size": 256, "extra": ()}
QUICK = {"minutes": 0.05, "images": 40, "runs": 2, "siamfc": {"images": 16, "sequences": 1, "frames": 10, "size": 128,
         "extra": ("model.siamfc.pairs.pairs_per_epoch=16", "model.siamfc.val.sequences=1",
                   "model.siamfc.val.frames=10", "model.siamfc.val.size=128")}}


def timed(call, cuda: bool):
    """`call`, waiting for the GPU after it when `cuda` (so wall time counts the work)."""
    if not cuda:
        return call
    return lambda *args: (call(*args), torch.cuda.synchronize())[0]


def gpu_timings(model: torch.nn.Module, family: str, folder: Path, runs: int, cuda_ort: bool) -> dict:
    """PyTorch (and onnxruntime's CUDA provider, when it has one) on the GPU, ms/image at batch 1 and 8."""
    gpu, row = copy.deepcopy(model).cuda().eval(), {}
    for batch in bench_export.BATCHES:
        images = sample_images(batch, SIZE, seed=batch)
        proposals = bench_export.proposals_for(model, batch, SIZE)
        moved = None if proposals is None else [p.cuda() for p in proposals]
        row[f"pytorch_ms_b{batch}"] = bench_export.ms_per_image(timed(gpu, True), images.cuda(), moved, runs)
        if cuda_ort:
            runtime = load_onnx(folder / f"{family}-b{batch}.onnx", cuda=True)
            row[f"onnx_ms_b{batch}"] = bench_export.ms_per_image(runtime, images, proposals, runs)
    return row


def proposal_ms(model: torch.nn.Module, runs: int) -> float:
    """ms/image of the model's own proposal method (numpy, outside every graph) on synthetic images."""
    images = sample_images(4, SIZE, seed=4)
    proposer = model.proposal_input.proposer
    return bench_rcnn.median_ms(lambda: [proposer(as_uint8(image)) for image in images], len(images), runs=runs)


def detector_row(family: str, data: Path, out: Path, minutes: float, opts: argparse.Namespace) -> dict:
    """Train the family's tiny recipe under the budget on the shared split, then measure the trained model."""
    bench = BENCH[family]
    cfg = load_config(ROOT / "configs" / bench.RECIPES[family], bench.overrides(family, data, out, minutes))
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    model = trainer.inference_model.cpu().eval()
    folder = out / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    row = {"family": family, "recipe": bench.RECIPES[family], "params_M": params_m(model),
           "gflops": bench_families.gflops(model, SIZE), "epochs": trainer.epoch, "train_device": str(trainer.device),
           "train_images_per_s": round(trainer.step * cfg.train.batch_size / trainer.seconds, 1),
           "bbox_mAP": metrics.get("bbox_mAP"), "bbox_mAP_50": metrics.get("bbox_mAP_50"),
           "cpu": bench_export.export_timings(model, family, trainer.categories, folder, opts.threads, opts.runs)}
    if model.takes_proposals:
        row["proposal_ms"] = proposal_ms(model, opts.runs)
    if opts.gpu:
        row["gpu"] = gpu_timings(model, family, folder, opts.runs, opts.cuda_ort)
    return row


def params_m(model: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3)


def branch_timings(net, exported, runs: int, cuda: bool = False) -> dict:
    """The search branch (search crops + cross-correlation against one template), ms per search crop at batch
    1 and 8, PyTorch and the exported branch: the network's work per frame is one such call of 3 crops."""
    exemplars, _ = sample_crops(net)
    device = "cuda" if cuda else "cpu"
    net = copy.deepcopy(net).to(device).eval() if cuda else net
    with torch.no_grad():
        kernel = net.embed(exemplars.to(device))
    row = {}
    for batch in bench_export.BATCHES:
        crops = torch.rand(batch, 3, net.search_size, net.search_size, generator=torch.Generator().manual_seed(batch))
        pytorch = timed(lambda c, _t, _p: net.respond(kernel, net.embed(c)), cuda)
        row[f"pytorch_ms_b{batch}"] = bench_export.ms_per_image(pytorch, crops.to(device), None, runs)
        if exported is not None:
            call = lambda c, _t, _p: exported.search(kernel.cpu(), c)  # noqa: E731
            row[f"onnx_ms_b{batch}"] = bench_export.ms_per_image(call, crops, None, runs)
    return row


@torch.no_grad()
def search_gflops(net) -> float:
    """FLOPs (2 per multiply-add) of one search crop: its embedding and the cross-correlation."""
    _, crops = sample_crops(net, scales=1)
    kernel = net.embed(sample_crops(net)[0])
    counter = FlopCounterMode(display=False)
    with counter:
        net.respond(kernel, net.embed(crops))
    return round(counter.get_total_flops() / 1e9, 3)


def siamfc_row(out: Path, minutes: float, opts: argparse.Namespace) -> dict:
    """Train configs/siamfc_tiny.yaml under the budget (bench_siamfc), export its branches, time them, and track
    the synthetic test sequences with the PyTorch tracker and with the one on the ONNX branches."""
    work, setup = out / "siamfc", opts.siamfc
    trainer = bench_siamfc.train_run(work, setup["images"], minutes, 500, ("train.eval_every=0", *setup["extra"]))
    tracker = load_tracker(work / "run" / "best.pt")
    net = tracker.net
    export_siamfc(net, "onnx", work / "siamfc.onnx", tracker.options)
    onnx_net = load_siamfc(work / "siamfc.onnx", threads=opts.threads)
    sequences = bench_siamfc.tracking_sequences(work, setup["sequences"], setup["frames"], setup["size"])
    found = bench_siamfc.scores(evaluate_sequences(tracker, sequences))
    onnx_found = bench_siamfc.scores(evaluate_sequences(exported_tracker(work / "siamfc.onnx", "onnx", opts.threads),
                                                        sequences))
    row = {"family": "siamfc", "recipe": "siamfc_tiny.yaml", "params_M": params_m(net), "gflops": search_gflops(net),
           "epochs": trainer.epoch, "train_device": str(trainer.device),
           "train_images_per_s": round(trainer.step * trainer.cfg.train.batch_size / trainer.seconds, 1),
           "success_auc": found["success_auc"], "precision_20": found["precision_20"], "fps": found["fps"],
           "onnx_success_auc": onnx_found["success_auc"], "onnx_fps": onnx_found["fps"],
           "cpu": {**branch_timings(net, onnx_net, opts.runs), "match": compare_siamfc(net, onnx_net)["match"]}}
    if opts.gpu:
        cuda_net = load_siamfc(work / "siamfc.onnx", cuda=True) if opts.cuda_ort else None
        row["gpu"] = branch_timings(net, cuda_net, opts.runs, cuda=True)
    return row


def fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def speed_cells(row: dict, device: str, opts: argparse.Namespace) -> list[str]:
    """PyTorch b1, b8, ONNX Runtime b1, b8 on `device` (cpu | gpu): ms, or why there is no number."""
    if device == "gpu" and not opts.gpu:
        return ["not lent"] * 4
    found = row.get(device, {})
    cells = [fmt(found.get(f"pytorch_ms_b{b}"), 2) for b in bench_export.BATCHES]
    no_ort = device == "gpu" and not opts.cuda_ort
    return cells + ["no CUDA provider" if no_ort else fmt(found.get(f"onnx_ms_b{b}"), 2) for b in bench_export.BATCHES]


def accuracy(row: dict) -> str:
    if row["family"] == "siamfc":
        return (f"success AUC {row['success_auc']:.3f}, precision@20 {row['precision_20']:.3f} "
                f"({row['fps']:.0f} fps; on the ONNX branches {row['onnx_success_auc']:.3f}, "
                f"{row['onnx_fps']:.0f} fps)" + ("" if row["cpu"]["match"] else "; ONNX differs"))
    text = f"bbox_mAP {fmt(row['bbox_mAP'], 3)}, mAP_50 {fmt(row['bbox_mAP_50'], 3)}"
    text += f" (+ {row['proposal_ms']:.1f} ms/image of proposals)" if "proposal_ms" in row else ""
    return text + ("" if row["cpu"]["match"] else f"; ONNX differs on {row['cpu']['mismatched_images']} of 8 images")


def command(family: str, opts: argparse.Namespace) -> str:
    """The command that reproduces one row (the split depends on --images only; threads if set)."""
    parts = ["python benchmarks/perf_table.py", f"--families {family}", f"--minutes {opts.minutes:g}",
             f"--images {opts.images}"]
    parts += [f"--threads {opts.threads_arg}"] * bool(opts.threads_arg) + ["--quick"] * opts.quick
    return " ".join(parts)


def table(rows: list[dict], opts: argparse.Namespace) -> list[str]:
    head = ["model (recipe)", "params", "GFLOPs", "train img/s", "CPU PyTorch b1", "b8", "CPU ONNX Runtime b1",
            "b8", "GPU PyTorch b1", "b8", "GPU ONNX Runtime b1", "b8", "accuracy (synthetic benchmark)", "reproduce"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{TITLES[row['family']]} (`{row['recipe']}`)", f"{row['params_M']:.2f} M", fmt(row["gflops"], 3),
                 fmt(row["train_images_per_s"]), *speed_cells(row, "cpu", opts), *speed_cells(row, "gpu", opts),
                 accuracy(row), f"`{command(row['family'], opts)}`"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


KEEP = "<!-- perf_table.py rewrites everything above this line; the sections below are hand-written and kept -->"


def kept_sections(path: Path) -> str:
    """The hand-written part of the file at `path`: the KEEP line and all after it ('' when there is none)."""
    text = path.read_text() if path.is_file() else ""
    return text[text.index(KEEP):] if KEEP in text else ""


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    import onnxruntime

    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available()
            else None, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(), "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}


def markdown(rows: list[dict], opts: argparse.Namespace, host: dict) -> str:
    quick = ["", "**QUICK SMOKE RUN (--quick): a few seconds of training per row; the numbers show the table works "
                 "and mean nothing else.** Regenerate without --quick on an idle machine."] * opts.quick
    lines = [
        "# Performance table", "",
        f"Generated by `{opts.command}` on {host['date']}; do not edit the table by hand.", *quick, "",
        f"- Machine: {host['cpu']}, {host['cores']} cores; GPU: {host['gpu'] or 'not lent'}. torch {host['torch']}, "
        f"onnxruntime {host['onnxruntime']}, Python {host['python']}. Load average (1 minute) when it started: "
        f"{opts.load:.1f}" + (" (other work was running: slower than an idle machine)." if opts.load >= host["cores"]
                              else "."),
        f"- Budget: {opts.minutes:g} minutes of training per row (as many epochs as fit, one evaluation at the end), "
        f"on {opts.images} synthetic {SIZE} px shapes images, 20% held out (the detectors share the split); "
        f"inference timed with threads: {opts.threads} (PyTorch and ONNX Runtime alike), median of {opts.runs} calls.",
        "", *table(rows, opts), "",
        "Columns: parameters and GFLOPs (2 per multiply-add, torch's FlopCounterMode) of one eval forward at "
        f"{SIZE} px; train img/s over the whole budget; ms per image at batch 1 and 8, post-processing included, "
        "on noisy synthetic images, the ONNX Runtime figure from the trained checkpoint exported by "
        "`detection.deploy` (checked against PyTorch first). Fast R-CNN and R-CNN are timed given the same 196 grid "
        "proposals per image on both sides; their own selective search, in numpy outside every graph, is shown "
        "apart. mAP is COCO bbox mAP on the held-out split.",
        "",
        "SiamFC: train img/s counts training pairs; GFLOPs and ms are per search crop (its embedding and the "
        "cross-correlation with one template; a frame is 3 crops), the exported search branch on the ONNX side. "
        "Accuracy is the one-pass success AUC and precision at 20 px on synthetic test sequences (crossing targets "
        "with a same-class distractor), tracked by the PyTorch tracker and by the same tracker on the ONNX "
        "branches (detection.deploy.siamfc_runtime), each with its frame rate.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="training budget per row (default 1.5; --quick 0.05)")
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}")
    parser.add_argument("--images", type=int, help="synthetic images of the detectors' split (default 500)")
    parser.add_argument("--threads", type=int, default=0, help="torch and onnxruntime threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="a tiny budget and data, for a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "README.md")
    opts = parser.parse_args(argv)
    unknown = sorted(set(opts.families.split(",")) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    opts.command = " ".join(["python benchmarks/perf_table.py", *(argv if argv is not None else sys.argv[1:])])
    opts.minutes = opts.minutes if opts.minutes is not None else QUICK["minutes"] if opts.quick else 1.5
    opts.images = opts.images or (QUICK["images"] if opts.quick else 500)
    opts.runs, opts.siamfc = (QUICK["runs"], QUICK["siamfc"]) if opts.quick else (5, SIAMFC)
    return opts


def main(argv: list[str] | None = None) -> dict:
    opts = parse_args(argv)
    opts.load = os.getloadavg()[0]
    opts.threads_arg = opts.threads
    if opts.threads:
        torch.set_num_threads(opts.threads)
    opts.threads = torch.get_num_threads()
    import onnxruntime

    opts.gpu = torch.cuda.is_available()
    opts.cuda_ort = opts.gpu and "CUDAExecutionProvider" in onnxruntime.get_available_providers()

    def run_row(family: str, data: Path, out: Path, minutes: float) -> dict:
        if family == "siamfc":
            return siamfc_row(out, minutes, opts)
        return detector_row(family, data, out, minutes, opts)

    rows = bench_families.run_families(opts.families, opts.images, opts.minutes, run_row)
    host = machine()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    kept = kept_sections(opts.out)
    with atomic_path(opts.out) as tmp:
        Path(tmp).write_text(markdown(rows, opts, host) + ("\n" + kept if kept else ""))
    summary = {"benchmark": "perf_table", "machine": host, "load_average": opts.load, "budget_minutes": opts.minutes,
               "images": opts.images,
               "threads": opts.threads, "quick": opts.quick, "command": opts.command, "rows": rows}
    with atomic_path(opts.out.with_name("results.json")) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(table(rows, opts)), file=sys.stderr)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
