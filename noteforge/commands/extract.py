"""`noteforge extract` (not written yet)."""


def register(app) -> None:
    pass
