"""Pure-Python twins of _core_algos.pxi (Maglev, Rendezvous, JumpHash kernels)."""

__all__: list[str] = []
