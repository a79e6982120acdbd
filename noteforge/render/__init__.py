"""Renderers: rich text for people, built from the library's plain data."""
