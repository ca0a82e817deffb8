"""check: deployment rules over a model, each with an ID and a severity."""
