"""`noteforge matrix` (not written yet)."""


def register(app) -> None:
    pass
