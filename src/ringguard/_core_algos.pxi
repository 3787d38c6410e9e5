# Kernels of Maglev, Rendezvous and JumpHash, included into _core.pyx.
