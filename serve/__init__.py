"""HTTP detection service on Ray Serve: FastAPI ingress, one batching deployment per model, client.

Start it with `python -m serve --checkpoint CKPT` or `serve run configs/serve.yaml`.
"""
