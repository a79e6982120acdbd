"""`noteforge verify` (not written yet)."""


def register(app) -> None:
    pass
