"""The framework view: Keras / PyTorch counts rebuilt through the rewrites exporters make."""
