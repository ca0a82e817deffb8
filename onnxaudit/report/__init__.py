"""The Report: plain data the renderers print, with schema_version."""
