"""`noteforge notes` (not written yet)."""


def register(app) -> None:
    pass
