"""`noteforge writecmds` (not written yet)."""


def register(app) -> None:
    pass
