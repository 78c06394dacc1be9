"""Training StarCoder2 on token shards: FIM, packing, the loop, checkpoints, data parallelism."""
