"""Pure-Python twins of _core_slots.pxi (Redis Cluster slots, bounded loads)."""

__all__: list[str] = []
