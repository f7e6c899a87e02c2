"""The baseline for submission throughput: a Falcon endpoint that only enqueues a message.

`gunicorn -c deploy/gunicorn.conf.py bench.bare_app:app` serves `POST /enqueue/{rift_id}`:
it drains the request body unparsed, sends one Dramatiq message through a broker built by
the project's `build_broker`, and answers 202 with the message id.
"""

from __future__ import annotations

import dramatiq
import falcon

from actors.transport import build_broker
from service.settings import Settings

BARE_QUEUE = "bench_bare"
DRAIN_CHUNK_BYTES = 256 * 1024


class Healthz:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}


class Enqueue:
    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def on_post(self, req: falcon.Request, resp: falcon.Response, rift_id: str) -> None:
        while req.bounded_stream.read(DRAIN_CHUNK_BYTES):
            pass
        message = self.broker.enqueue(
            dramatiq.Message(
                queue_name=BARE_QUEUE,
                actor_name="bench_bare",
                args=(rift_id,),
                kwargs={},
                options={},
            )
        )
        resp.status = falcon.HTTP_202
        resp.media = {"message_id": message.message_id, "status": "PENDING"}


def create_bare_app(settings: Settings) -> falcon.App[falcon.Request, falcon.Response]:
    app = falcon.App()
    app.add_route("/healthz", Healthz())
    app.add_route("/enqueue/{rift_id}", Enqueue(build_broker(settings)))
    return app


app = create_bare_app(Settings.from_env())
