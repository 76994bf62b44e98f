"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.

Pure standard library (``hashlib`` and ``re``): the standalone command-line verifier imports
this module, so it must never pull in Flask or a database driver.

Terminology follows RFC 6962 section 2.1: an *entry* is a log input ``d[i]`` (here an event
hash, but any bytes work), its *leaf hash* is ``SHA-256(0x00 || d[i])``, an interior node is
``SHA-256(0x01 || left || right)``, and ``MTH(D[0:n])`` is the root of the first ``n`` entries.

Generators raise ``ValueError`` on impossible requests; verifiers never raise and answer
``False`` to anything malformed, because they are fed data from untrusted sources.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TypeGuard

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "Node",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "range_hash",
    "range_nodes",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

_HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def leaf_hash(entry: bytes) -> bytes:
    """Return the RFC 6962 leaf hash of ``entry``: ``SHA-256(0x00 || entry)``."""
    digest = hashlib.sha256(_LEAF_PREFIX)
    digest.update(entry)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    digest = hashlib.sha256(_NODE_PREFIX)
    digest.update(left)
    digest.update(right)
    return digest.digest()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 Merkle Tree Hash of a list of already-computed leaf hashes.

    Runs in O(n) time without recursion; the empty list gives ``EMPTY_ROOT``.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        # Carrying an unpaired last node up unchanged builds exactly RFC 6962's tree, whose
        # left subtree is always the largest perfect tree that fits.
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root(entries: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 Merkle Tree Hash ``MTH(entries)`` of raw entries."""
    return root_from_leaf_hashes([leaf_hash(entry) for entry in entries])


def _split(n: int) -> int:
    """Return the largest power of two strictly less than ``n`` (RFC 6962's ``k``), n >= 2."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True as a tree size is a caller's bug, not a size.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == _HASH_SIZE


def _is_list_like(value: object) -> TypeGuard[Sequence[object]]:
    # str and bytes are Sequences too, but one passed where a list of hashes belongs is a
    # malformed document, not a list of one-character (or one-int) items.
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _proof_nodes(proof: object) -> list[bytes] | None:
    if not _is_list_like(proof):
        return None
    nodes: list[bytes] = []
    for node in proof:
        if not isinstance(node, bytes | bytearray) or len(node) != _HASH_SIZE:
            return None
        nodes.append(bytes(node))
    return nodes


class Frontier:
    """The compact state of an append-only tree: the roots of its perfect subtrees, largest first.

    Appending is amortised O(1); the root is O(log n). Lets a log compute its root after each
    append without re-reading it.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Build a frontier for a tree of ``size`` entries from its perfect-subtree roots.

        Raises ``ValueError`` unless ``size`` is a non-negative integer and ``hashes`` holds
        exactly one 32-byte hash per set bit of ``size``.
        """
        if not _is_int(size) or size < 0:
            raise ValueError(f"frontier size must be a non-negative integer, not {size!r}")
        if not _is_list_like(hashes):
            raise ValueError("frontier hashes must be a sequence of hashes")
        nodes = list(hashes)
        if len(nodes) != size.bit_count():
            raise ValueError(
                f"a frontier of size {size} has {size.bit_count()} hashes, not {len(nodes)}"
            )
        if not all(_is_hash(node) for node in nodes):
            raise ValueError(f"frontier hashes must be {_HASH_SIZE}-byte values")
        self._size = size
        self._hashes = [bytes(node) for node in nodes]

    @property
    def size(self) -> int:
        """The number of entries appended so far."""
        return self._size

    def append(self, entry: bytes) -> None:
        """Append one entry, hashing it as a leaf."""
        self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(
        self, leaf: bytes, completed: list[tuple[Node, bytes]] | None = None
    ) -> None:
        """Append one leaf given its already-computed 32-byte leaf hash.

        With ``completed``, add to it every node of the tree this append completes, the leaf
        first: ``((level, index), hash)``, the node at ``level`` covering entries
        ``index * 2**level`` to ``(index + 1) * 2**level``.
        """
        if not _is_hash(leaf):
            raise ValueError(f"a leaf hash is {_HASH_SIZE} bytes")
        merged = bytes(leaf)
        size = self._size
        if completed is not None:
            completed.append(((0, size), merged))
        level = 0
        # Each trailing 1 bit of the old size is a perfect subtree the same height as the one
        # being carried, so the two merge, exactly like carrying in binary addition.
        while size & 1:
            merged = node_hash(self._hashes.pop(), merged)
            size >>= 1
            level += 1
            if completed is not None:
                completed.append(((level, self._size >> level), merged))
        self._hashes.append(merged)
        self._size += 1

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of everything appended so far (``EMPTY_ROOT`` if none)."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for subtree in reversed(self._hashes[:-1]):
            result = node_hash(subtree, result)
        return result

    def to_json(self) -> list[str]:
        """Return the perfect-subtree roots as lowercase hex strings, largest subtree first."""
        return [node.hex() for node in self._hashes]

    @classmethod
    def from_json(cls, size: int, data: Sequence[str]) -> Frontier:
        """Rebuild a frontier from ``size`` and the output of ``to_json``.

        Raises ``ValueError`` if any element is not 64 lowercase hex digits or the count does
        not match ``size``.
        """
        if not _is_list_like(data):
            raise ValueError("frontier data must be a list of hex strings")
        nodes: list[bytes] = []
        for item in data:
            if not isinstance(item, str) or _HEX_HASH.fullmatch(item) is None:
                raise ValueError(f"frontier hash {item!r} is not {_HASH_SIZE * 2} lowercase hex")
            nodes.append(bytes.fromhex(item))
        return cls(size, nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, hashes={self.to_json()!r})"


# --- proofs from stored nodes ---------------------------------------------------------------
#
# A log that keeps every complete node of its tree (level, index) answers any root or proof
# by reading O(log n) nodes per subtree, instead of every leaf up to the tree size. The
# functions below say which nodes a proof needs; ``range_hash`` combines them.

Node = tuple[int, int]  # (level, index): entries index * 2**level up to (index + 1) * 2**level


def range_nodes(lo: int, hi: int) -> list[Node]:
    """The complete nodes whose hashes make ``MTH(D[lo:hi])``, left to right.

    ``[lo, hi)`` must be a range RFC 6962's recursion produces from ``[0, n)`` (every range
    the proofs below name is): it splits into aligned power-of-two blocks, largest first.
    """
    if not 0 <= lo < hi:
        raise ValueError(f"no subtree covers entries {lo} to {hi}")
    nodes: list[Node] = []
    while lo < hi:
        level = min((hi - lo).bit_length() - 1, (lo & -lo).bit_length() - 1 if lo else 64)
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def range_hash(nodes: Sequence[Node], hashes: dict[Node, bytes]) -> bytes:
    """``MTH`` of a range from the hashes of its ``range_nodes``: RFC 6962's tree of them,
    which is the fold from the right (each left block is the largest perfect subtree)."""
    result = hashes[nodes[-1]]
    for node in reversed(nodes[:-1]):
        result = node_hash(hashes[node], result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The entry ranges whose roots make ``PATH(index, D[0:size])``, bottom-up."""
    if not (_is_int(index) and _is_int(size)) or not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The entry ranges whose roots make ``PROOF(first, D[0:second])``, bottom-up."""
    if not (_is_int(first) and _is_int(second)) or not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole_first_tree = 0, second, first, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            whole_first_tree = False
    if not whole_first_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Return the RFC 6962 section 2.1.1 audit path ``PATH(index, D[0:size])``.

    ``leaf_hashes`` are the tree's leaf hashes (only the first ``size`` are used). The path is
    ordered from the leaf upwards. Raises ``ValueError`` unless ``0 <= index < size <=
    len(leaf_hashes)``. Runs in O(size) time: each sibling subtree is hashed once.
    """
    if not (_is_int(index) and _is_int(size)):
        raise ValueError("index and size must be integers")
    if size > len(leaf_hashes):
        raise ValueError(f"tree size {size} exceeds the {len(leaf_hashes)} leaves given")
    return [root_from_leaf_hashes(leaf_hashes[lo:hi]) for lo, hi in inclusion_ranges(index, size)]


def consistency_proof(leaf_hashes: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """Return the RFC 6962 section 2.1.2 consistency proof ``PROOF(first, D[0:second])``.

    Raises ``ValueError`` unless ``0 < first <= second <= len(leaf_hashes)``; ``first ==
    second`` gives ``[]``. Runs in O(second) time: each subtree in the proof is hashed once.
    """
    if not (_is_int(first) and _is_int(second)):
        raise ValueError("tree sizes must be integers")
    if second > len(leaf_hashes):
        raise ValueError(f"tree size {second} exceeds the {len(leaf_hashes)} leaves given")
    return [
        root_from_leaf_hashes(leaf_hashes[lo:hi]) for lo, hi in consistency_ranges(first, second)
    ]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that leaf hash ``leaf`` is at ``index`` in the tree of ``size`` whose root is ``root``.

    Implements RFC 9162 section 2.1.3.2. Returns ``False``, never raises, on any malformed
    input: a non-integer, negative or out-of-range index or size, hashes that are not 32
    bytes, or a proof of the wrong length.
    """
    nodes = _proof_nodes(proof)
    if nodes is None or not (_is_hash(leaf) and _is_hash(root)):
        return False
    if not (_is_int(index) and _is_int(size)) or index < 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in nodes:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # A right-edge node with no right sibling at these levels: skip up to the
                # level where the path next has a sibling.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that the tree of ``second`` entries with ``second_root`` extends the ``first`` one.

    Implements RFC 9162 section 2.1.4.2. ``first == second`` holds only with an empty proof
    and equal roots. A proof from size 0 is not defined and gives ``False``. Returns ``False``,
    never raises, on any malformed input.
    """
    nodes = _proof_nodes(proof)
    if nodes is None or not (_is_hash(first_root) and _is_hash(second_root)):
        return False
    if not (_is_int(first) and _is_int(second)) or not 0 < first <= second:
        return False
    if first == second:
        return not nodes and first_root == second_root
    if not nodes:
        return False
    # When the first tree is a perfect subtree of the second, the proof omits its root
    # because the verifier already holds it.
    if first & (first - 1) == 0:
        nodes.insert(0, bytes(first_root))
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
