"""scan: the same pipeline over many files, JSON Lines and a summary."""
