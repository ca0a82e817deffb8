"""Reading files safely: the open, the wire walk, the data map, external data, isolation, bounded weight reads."""
