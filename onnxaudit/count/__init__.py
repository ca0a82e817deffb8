"""Counting: roles of tensors, the param table, conventions, layers, explanations."""
