"""The model as the rest of the pipeline sees it: ModelView, constant folding, checked dims."""
