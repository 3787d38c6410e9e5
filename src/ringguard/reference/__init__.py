"""Pure-Python reference twin of every placement: slow, plain, and obviously correct.

It implements ``docs/placement-contract.md`` literally (plain loops, :mod:`bisect`,
:mod:`hashlib`, a small pure-Python XXH64). The compiled core is tested against it, and the
benchmarks measure speed-ups against it. Same class names and signatures as the fast API.
"""

from .jump import JumpHash, jump_hash
from .maglev import Maglev
from .redis_slots import RedisSlots, crc16, key_slot, redis_slot
from .rendezvous import Rendezvous
from .ring import Ring, canonical_keys, ketama_hash, ketama_keys, xxh64

__all__ = [
    "JumpHash",
    "Maglev",
    "RedisSlots",
    "Rendezvous",
    "Ring",
    "canonical_keys",
    "crc16",
    "jump_hash",
    "key_slot",
    "ketama_hash",
    "ketama_keys",
    "redis_slot",
    "xxh64",
]
