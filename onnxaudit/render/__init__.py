"""Renderers, one module per output: they format a Report, never compute."""
