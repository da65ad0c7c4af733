"""`python -m serve.smoke --checkpoint CKPT --image PATH`: start the service, send one image, stop.

Sends the image over real HTTP on 127.0.0.1 with the client, prints the answer, exits 0.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from datasets.core.errors import UserError, cli_main


def short_json(answer: dict, top: int = 5) -> str:
    """The answer as JSON, one detection per line, the best `top` of them, numbers rounded."""
    dets = [{**d, "bbox": [round(v, 1) for v in d["bbox"]], "score": round(d["score"], 3)}
            for d in answer.get("detections", [])[:top]]
    order = ("model", "version", "width", "height", "time_ms", "batch_size")
    head = {k: answer[k] for k in order if k in answer}
    head["detections_total"] = len(answer.get("detections", []))
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    body = "".join(f"\n    {json.dumps(d)}," for d in dets).rstrip(",")
    return "{\n" + "\n".join(lines) + '\n  "detections": [' + body + ("\n  ]" if dets else "]") + "\n}"


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serve.smoke", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--score-threshold", type=float, metavar="T",
                   help="sent with the request (default: none sent, so the model's own applies)")
    args = p.parse_args(argv)
    if not Path(args.image).is_file():
        raise UserError(f"--image: no file at {args.image}")
    from serve import launch
    from serve.client import DetectClient, ServiceError

    port = args.port or launch.free_port()
    print(f"starting the service on 127.0.0.1:{port} ...", flush=True)
    url = launch.start({"checkpoints": [args.checkpoint]}, host="127.0.0.1", port=port, quiet=True)
    try:
        client = DetectClient(url, timeout=120)
        client.wait_ready(timeout=120)
        answer = client.detect(args.image, score_threshold=args.score_threshold)
        print(f"POST {url}/v1/detect ({Path(args.image).name}) ->")
        print(short_json(answer), flush=True)
    except ServiceError as exc:
        raise UserError(f"the service answered {exc}") from None
    finally:
        launch.stop()
        print("service stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
