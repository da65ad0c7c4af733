"""A bare Ray Serve ingress that reads a POST body and answers a small JSON: the floor of any service on this Serve.

benchmarks/serve_load.py loads it beside the detection service to tell Serve's own cost from the service's.
"""
from fastapi import FastAPI, Request
from ray import serve

api = FastAPI(title="echo")


@serve.deployment(name="echo", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class Echo:
    """Answers POST /v1/detect with the body's length, nothing decoded or run."""

    @api.post("/v1/detect")
    async def echo(self, request: Request) -> dict:
        return {"bytes": len(await request.body()), "batch_size": 1}


def echo_app() -> serve.Application:
    return Echo.bind()
