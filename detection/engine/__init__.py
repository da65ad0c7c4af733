"""Training engine: trainer, evaluator (COCOeval), checkpoint I/O, shared inference post-processing."""
