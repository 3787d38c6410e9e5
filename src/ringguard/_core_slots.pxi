# Kernels of Redis Cluster slots and bounded loads, included into _core.pyx.
