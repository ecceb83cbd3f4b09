"""`.env` beside the code, read when present (the file ENV_FILE names, if set): each variable it
sets counts unless the environment sets it already. Read by the settings, and by `make run`
before it decides which servers to embed."""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def read() -> None:
    path = Path(os.environ.get("ENV_FILE") or BASE_DIR / ".env")
    if path.is_file():
        environ.Env.read_env(str(path))  # never over what the environment says
