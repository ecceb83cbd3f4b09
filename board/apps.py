from django.apps import AppConfig


class BoardConfig(AppConfig):
    """The live board for a workspace's members, and the read API its page (and any other
    frontend) loads its snapshot from."""

    name = "board"
