"""What the model costs: MACs, elementwise FLOPs and memory, per node and per layer (one module per op family)."""
