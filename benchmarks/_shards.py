"""The command line a sharded benchmark run prints in its report (shared by benchmarks/spect.py and mri.py)."""


def sharded_command(base: str, shards: int) -> str:
    """``base`` alone, or ``shards`` 1-thread processes over ``base --shard k/n`` followed by ``base --merge n``."""
    if not shards:
        return base
    return (f"for k in {' '.join(str(k) for k in range(shards))}; do {base} --threads 1 --shard $k/{shards} & done; wait; "
            f"{base} --merge {shards}")
