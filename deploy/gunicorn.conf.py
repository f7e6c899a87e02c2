"""gunicorn settings for the API (`gunicorn -c deploy/gunicorn.conf.py service.api.wsgi:app`)."""

import os
import shutil
from pathlib import Path

# Before prometheus_client is imported: it picks in-process or multiprocess values once, at
# import, and the workers inherit that choice from this (the master) process. Absolute, so
# the master and its workers agree on it whatever directory they run in.
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path("var/prometheus/api").resolve())
)

from prometheus_client import multiprocess  # noqa: E402

from service.api import gunicorn_errors  # noqa: E402
from service.observability.gunicorn_logs import gunicorn_logger_class  # noqa: E402
from service.settings import Settings  # noqa: E402

bind = os.environ.get("API_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("API_WORKERS", "2"))
threads = int(os.environ.get("API_THREADS", "4"))
worker_class = "gthread"
# Uploads of 50 MB on slow links: the default 30 s would cut them off.
timeout = int(os.environ.get("API_TIMEOUT_S", "120"))
graceful_timeout = 30
accesslog = "-"
# Access and error lines in the app's shape (JSON when LOG_FORMAT=json or in production).
logger_class = gunicorn_logger_class(Settings.from_env().log_format)
# supervisord manages the API, not gunicornc; the control socket would be one path
# ($HOME/.gunicorn/gunicorn.ctl) shared by every gunicorn on the host, tests included.
control_socket_disable = True
# Requests gunicorn refuses itself (NUL in a header, oversize headers) answer the API's JSON
# error shape, not an HTML page; the workers fork from this process and inherit it.
gunicorn_errors.install()


def on_starting(server: object) -> None:
    # Values from a previous run would be summed into this one: start from nothing.
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    Path(_metrics_dir).mkdir(parents=True, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
