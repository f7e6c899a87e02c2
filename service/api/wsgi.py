"""The module gunicorn loads: `gunicorn service.api.wsgi:app`."""

from service.api.bootstrap import build_api
from service.settings import Settings

app = build_api(Settings.from_env())
