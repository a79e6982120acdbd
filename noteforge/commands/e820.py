"""`noteforge e820` (not written yet)."""


def register(app) -> None:
    pass
