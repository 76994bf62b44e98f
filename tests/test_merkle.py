"""Tests for ``registry.services.merkle``: published vectors, properties, rejected forgeries.

The known answers are copied from the reference tests of the certificate-transparency
implementations; the properties cross-check the module against a direct transcription of the
recursive definitions in RFC 6962 section 2.1, written here independently of the module.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.services import merkle

# ---------------------------------------------------------------------------------------------
# Known answers.
#
# Leaf inputs, roots, node hashes and compact (frontier) states: transparency-dev/merkle,
# testonly/constants.go (LeafInputs, RootHashes, NodeHashes, CompactTrees), commit
# 582a6ad190b6848f1d26f8bf08ddef29955d9db1. The same inputs and roots are kInputs and
# kSHA256Roots in google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc.

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# Indexed by tree size, 0 (the empty tree) to 8.
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# NodeHashes: [level][index], level 0 being the leaf hashes.
NODE_HASHES = [
    [
        bytes.fromhex(h)
        for h in (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        )
    ],
    [
        bytes.fromhex(h)
        for h in (
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        )
    ],
    [
        bytes.fromhex(h)
        for h in (
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        )
    ],
    [bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

_NH = NODE_HASHES
# CompactTrees: the perfect-subtree roots, largest first, for tree sizes 0 to 8.
COMPACT_TREES: list[list[bytes]] = [
    [],
    [_NH[0][0]],
    [_NH[1][0]],
    [_NH[1][0], _NH[0][2]],
    [_NH[2][0]],
    [_NH[2][0], _NH[0][4]],
    [_NH[2][0], _NH[1][2]],
    [_NH[2][0], _NH[1][2], _NH[0][6]],
    [_NH[3][0]],
]

_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
_D37E = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
_FAC5 = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
_6E34 = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
_B086 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"

# (index, size, path). Two sources, both over LEAF_INPUTS:
# - transparency-dev/merkle, proof/verify_test.go (inclusionProofs), commit
#   02194e9afb6c1d95b5381350007963aa70fff472; also kSHA256Paths in google/certificate-
#   transparency cpp/merkletree/merkle_tree_test.cc. Both number leaves from 1; converted to
#   0-based indices here. Their {0, 0, nil} entry is an invalid path and is not a vector.
# - transparency-dev/merkle, testonly/reference_test.go (TestRefInclusionProof), commit
#   141d627eab770a7e9a2514f46a8b6338e6d90874, already 0-based.
INCLUSION_VECTORS: list[tuple[int, int, list[str]]] = [
    # proof/verify_test.go
    (0, 1, []),
    (0, 8, [_96A2, _5F08, _6B47]),
    (5, 8, [_BC1A, _CA85, _D37E]),
    (2, 3, [_FAC5]),
    (1, 5, [_6E34, _5F08, _BC1A]),
    # testonly/reference_test.go
    (0, 2, [_96A2]),
    (1, 2, [_6E34]),
]

# (first, second, proof). Sources:
# - transparency-dev/merkle, proof/verify_test.go (consistencyProofs), commit
#   02194e9afb6c1d95b5381350007963aa70fff472; all but (6, 7) are also kSHA256Proofs in
#   google/certificate-transparency cpp/merkletree/merkle_tree_test.cc and
#   TestRefConsistencyProof in transparency-dev/merkle testonly/reference_test.go.
CONSISTENCY_VECTORS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (1, 8, [_96A2, _5F08, _6B47]),
    (6, 8, [_0EBC, _CA85, _D37E]),
    (2, 5, [_5F08, _BC1A]),
    (6, 7, [_0EBC, _B086, _D37E]),
]

REFERENCE_LEAVES = [merkle.leaf_hash(entry) for entry in LEAF_INPUTS]

# ---------------------------------------------------------------------------------------------
# An independent reference: RFC 6962 section 2.1's recursive definitions, transcribed directly
# with hashlib (not the module's helpers), for small trees only.


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    if not leaves:
        return _sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return _sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) over leaf hashes."""
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) over leaf hashes."""
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def inclusion_shape(index: int, size: int) -> tuple[str, ...]:
    """The verifier's hash operations for PATH(index, D[size]), read off the RFC 6962 recursion.

    'L' means the running hash is the left child at that step. Two (index, size) pairs with the
    same shape make a verifier do the very same hashing, so nothing can tell them apart.
    """
    ops: list[str] = []
    while size > 1:
        k = _k(size)
        if index < k:
            ops.append("L")
            size = k
        else:
            ops.append("R")
            index -= k
            size -= k
    return tuple(reversed(ops))


def consistency_shape(first: int, second: int) -> tuple[bool, tuple[str, ...]]:
    """The verifier's hash operations for PROOF(first, D[second]), as ``inclusion_shape``.

    The flag says whether the proof omits the first tree's root (the verifier supplies it).
    """
    ops: list[str] = []
    whole = True
    while first != second:
        k = _k(second)
        if first <= k:
            ops.append("new-on-right")
            second = k
        else:
            ops.append("shared-on-left")
            first -= k
            second -= k
            whole = False
    return whole, tuple(reversed(ops))


def _flip(node: bytes, bit: int) -> bytes:
    flipped = bytearray(node)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _entries(salt: bytes, count: int) -> list[bytes]:
    # Distinct 32-byte entries, like the event hashes the log stores; distinct leaves keep the
    # forgery checks meaningful (swapping two equal leaves is not a forgery).
    return [_sha256(salt + i.to_bytes(4, "big")) for i in range(count)]


RANDOM_NODE = _sha256(b"not a node of any tree here")
ALL_BITS = range(256)

InclusionArgs = tuple[bytes, int, int, list[bytes], bytes]
ConsistencyArgs = tuple[int, int, bytes, bytes, list[bytes]]


def _proof_edits(proof: list[bytes], bits: Sequence[int]) -> list[tuple[str, list[bytes]]]:
    """Every single-node corruption of a proof: flipped bits, a node dropped, a node added."""
    edits: list[tuple[str, list[bytes]]] = []
    for pos, node in enumerate(proof):
        edits.extend(
            (
                f"bit {bit} of node {pos} flipped",
                [*proof[:pos], _flip(node, bit), *proof[pos + 1 :]],
            )
            for bit in bits
        )
        edits.append((f"node {pos} dropped", [*proof[:pos], *proof[pos + 1 :]]))
        edits.append((f"node {pos} duplicated", [*proof[: pos + 1], *proof[pos:]]))
    for pos in range(len(proof) + 1):
        edits.append((f"extra node inserted at {pos}", [*proof[:pos], RANDOM_NODE, *proof[pos:]]))
    return edits


def inclusion_forgeries(
    entries: Sequence[bytes], index: int, size: int, bits: Sequence[int]
) -> list[tuple[str, InclusionArgs]]:
    """Corruptions of the genuine inclusion proof of ``index`` in the first ``size`` entries.

    Every one states something false, and must be rejected.
    """
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    leaf, root = leaves[index], merkle.root_from_leaf_hashes(leaves[:size])
    proof = merkle.inclusion_proof(leaves, index, size)
    out: list[tuple[str, InclusionArgs]] = []
    out.extend(
        (f"index {other}", (leaf, other, size, proof, root))
        for other in range(size)
        if other != index
    )
    # A size from a real checkpoint comes with that checkpoint's root.
    for other_size in (size - 1, size + 1):
        if index < other_size <= len(leaves):
            other_root = merkle.root_from_leaf_hashes(leaves[:other_size])
            out.append(
                (f"size {other_size} (its root)", (leaf, index, other_size, proof, other_root))
            )
    out.extend(
        (f"proof: {what}", (leaf, index, size, edited, root))
        for what, edited in _proof_edits(proof, bits)
    )
    out.append(("root appended to proof", (leaf, index, size, [*proof, root], root)))
    out.append(("leaf prepended to proof", (leaf, index, size, [leaf, *proof], root)))
    wrong_roots = [merkle.EMPTY_ROOT, RANDOM_NODE, *(_flip(root, bit) for bit in bits)]
    wrong_roots += [
        merkle.root_from_leaf_hashes(leaves[:s])
        for s in {1, 2, size - 1, size + 1, len(leaves)}
        if 0 < s <= len(leaves)
    ]
    out.extend(
        (f"root {wrong.hex()[:8]}", (leaf, index, size, proof, wrong))
        for wrong in wrong_roots
        if wrong != root
    )
    wrong_leaves = [entries[index], RANDOM_NODE, *(_flip(leaf, bit) for bit in bits)]
    wrong_leaves += [other for other in leaves if other != leaf]
    out.extend(
        (f"leaf {wrong.hex()[:8]}", (wrong, index, size, proof, root)) for wrong in wrong_leaves
    )
    return out


def consistency_forgeries(
    leaves: Sequence[bytes], first: int, second: int, bits: Sequence[int]
) -> list[tuple[str, ConsistencyArgs]]:
    """Corruptions of the genuine consistency proof from ``first`` to ``second`` leaves."""
    nearby = {1, 2, first - 1, first, first + 1, second - 1, second, second + 1, len(leaves)}
    roots = {s: merkle.root_from_leaf_hashes(leaves[:s]) for s in nearby if 0 < s <= len(leaves)}
    r1, r2 = roots[first], roots[second]
    proof = merkle.consistency_proof(leaves, first, second)
    out: list[tuple[str, ConsistencyArgs]] = []
    for f, s in (
        (first - 1, second),
        (first + 1, second),
        (first, second - 1),
        (first, second + 1),
    ):
        if 0 < f <= s and s in roots and (f, s) != (first, second):
            out.append((f"sizes {f}, {s} (their roots)", (f, s, roots[f], roots[s], proof)))
    if r1 != r2:
        out.append(("roots swapped", (first, second, r2, r1, proof)))
    out.extend(
        (f"proof: {what}", (first, second, r1, r2, edited))
        for what, edited in _proof_edits(proof, bits)
    )
    for name, extra in (("first root", r1), ("second root", r2)):
        out.append((f"{name} appended", (first, second, r1, r2, [*proof, extra])))
        out.append((f"{name} prepended", (first, second, r1, r2, [extra, *proof])))
    if proof:
        out.append(("empty proof", (first, second, r1, r2, [])))
    wrong = [merkle.EMPTY_ROOT, RANDOM_NODE, *roots.values()]
    out.extend(
        (f"first root {w.hex()[:8]}", (first, second, w, r2, proof)) for w in wrong if w != r1
    )
    out.extend(
        (f"second root {w.hex()[:8]}", (first, second, r1, w, proof)) for w in wrong if w != r2
    )
    out.extend(
        (f"first root bit {bit}", (first, second, _flip(r1, bit), r2, proof)) for bit in bits
    )
    out.extend(
        (f"second root bit {bit}", (first, second, r1, _flip(r2, bit), proof)) for bit in bits
    )
    return out


def _accepted_inclusion(forgeries: list[tuple[str, InclusionArgs]]) -> list[str]:
    return [what for what, args in forgeries if merkle.verify_inclusion(*args)]


def _accepted_consistency(forgeries: list[tuple[str, ConsistencyArgs]]) -> list[str]:
    return [what for what, args in forgeries if merkle.verify_consistency(*args)]


# ---------------------------------------------------------------------------------------------
# Known-answer tests.


def test_empty_root_is_sha256_of_nothing() -> None:
    assert merkle.EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert merkle.root([]) == merkle.root_from_leaf_hashes([]) == ROOTS[0]


def test_leaf_and_node_hashes_match_the_reference_tree() -> None:
    assert NODE_HASHES[0] == REFERENCE_LEAVES
    for level in range(1, len(NODE_HASHES)):
        below = NODE_HASHES[level - 1]
        assert [
            merkle.node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)
        ] == NODE_HASHES[level]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_reference_tree(size: int) -> None:
    assert merkle.root(LEAF_INPUTS[:size]) == ROOTS[size]
    assert merkle.root_from_leaf_hashes(REFERENCE_LEAVES[:size]) == ROOTS[size]
    assert ref_mth(REFERENCE_LEAVES[:size]) == ROOTS[size]


def test_frontier_matches_the_reference_compact_trees() -> None:
    frontier = merkle.Frontier()
    assert frontier.to_json() == []
    assert frontier.root() == ROOTS[0]
    for size, entry in enumerate(LEAF_INPUTS, start=1):
        frontier.append(entry)
        assert frontier.size == size
        assert frontier.to_json() == [node.hex() for node in COMPACT_TREES[size]]
        assert frontier.root() == ROOTS[size]
        assert merkle.Frontier(size, COMPACT_TREES[size]).root() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    proof = merkle.inclusion_proof(REFERENCE_LEAVES, index, size)
    assert [node.hex() for node in proof] == path
    assert merkle.verify_inclusion(REFERENCE_LEAVES[index], index, size, proof, ROOTS[size])
    assert _accepted_inclusion(inclusion_forgeries(LEAF_INPUTS, index, size, ALL_BITS)) == []


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY_VECTORS)
def test_consistency_vectors(first: int, second: int, path: list[str]) -> None:
    proof = merkle.consistency_proof(REFERENCE_LEAVES, first, second)
    assert [node.hex() for node in proof] == path
    assert merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)
    forgeries = consistency_forgeries(REFERENCE_LEAVES, first, second, ALL_BITS)
    assert _accepted_consistency(forgeries) == []


def test_every_proof_in_the_reference_tree() -> None:
    """All 36 inclusion proofs and 36 consistency proofs of the 8-leaf tree, all corruptions."""
    for size in range(1, 9):
        for index in range(size):
            proof = merkle.inclusion_proof(REFERENCE_LEAVES, index, size)
            assert proof == ref_path(index, REFERENCE_LEAVES[:size])
            assert merkle.verify_inclusion(REFERENCE_LEAVES[index], index, size, proof, ROOTS[size])
            forgeries = inclusion_forgeries(LEAF_INPUTS, index, size, ALL_BITS)
            assert _accepted_inclusion(forgeries) == [], (index, size)
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(REFERENCE_LEAVES, first, size)
            assert proof == ref_subproof(first, REFERENCE_LEAVES[:size], True)
            assert merkle.verify_consistency(first, size, ROOTS[first], ROOTS[size], proof)
            forgeries = consistency_forgeries(REFERENCE_LEAVES, first, size, ALL_BITS)
            assert _accepted_consistency(forgeries) == [], (first, size)


# ---------------------------------------------------------------------------------------------
# Properties over random trees.

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)
SALTS = st.binary(max_size=8)


@PROPERTY_SETTINGS
@given(salt=SALTS, data=st.data())
def test_inclusion_proofs_verify_and_reject_forgeries(salt: bytes, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    bit = data.draw(st.integers(0, 255), label="bit")
    entries = _entries(salt, size + 1)
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    root = merkle.root(entries[:size])
    assert root == merkle.root_from_leaf_hashes(leaves[:size]) == ref_mth(leaves[:size])
    proof = merkle.inclusion_proof(leaves, index, size)
    assert proof == ref_path(index, leaves[:size])
    assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    assert _accepted_inclusion(inclusion_forgeries(entries, index, size, [bit])) == []


@PROPERTY_SETTINGS
@given(salt=SALTS, data=st.data())
def test_consistency_proofs_verify_and_reject_forgeries(salt: bytes, data: st.DataObject) -> None:
    second = data.draw(st.integers(1, 300), label="second")
    first = data.draw(st.integers(1, second), label="first")
    bit = data.draw(st.integers(0, 255), label="bit")
    leaves = [merkle.leaf_hash(entry) for entry in _entries(salt, second + 1)]
    first_root = merkle.root_from_leaf_hashes(leaves[:first])
    second_root = merkle.root_from_leaf_hashes(leaves[:second])
    proof = merkle.consistency_proof(leaves, first, second)
    assert proof == ref_subproof(first, leaves[:second], True)
    assert merkle.verify_consistency(first, second, first_root, second_root, proof)
    forgeries = consistency_forgeries(leaves, first, second, [bit])
    assert _accepted_consistency(forgeries) == []


@PROPERTY_SETTINGS
@given(salt=SALTS, data=st.data())
def test_a_size_alone_cannot_be_checked_without_its_root(salt: bytes, data: st.DataObject) -> None:
    """A changed size with the ORIGINAL root fails unless no verifier could tell the difference.

    Nothing in a proof says whether a sibling is a leaf or a subtree, so (index, size) pairs
    with the same shape are indistinguishable: the root is what binds the size, which is why a
    checkpoint signs the two together. Every other size change must be rejected.
    """
    size = data.draw(st.integers(1, 300), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    second = data.draw(st.integers(2, 300), label="second")
    first = data.draw(st.integers(1, second - 1), label="first")
    leaves = [merkle.leaf_hash(entry) for entry in _entries(salt, max(size, second))]

    root = merkle.root_from_leaf_hashes(leaves[:size])
    proof = merkle.inclusion_proof(leaves, index, size)
    for other in (size - 1, size + 1):
        if other > index:
            accepted = merkle.verify_inclusion(leaves[index], index, other, proof, root)
            assert accepted == (inclusion_shape(index, other) == inclusion_shape(index, size))

    r1 = merkle.root_from_leaf_hashes(leaves[:first])
    r2 = merkle.root_from_leaf_hashes(leaves[:second])
    proof = merkle.consistency_proof(leaves, first, second)
    for f, s in (
        (first - 1, second),
        (first + 1, second),
        (first, second - 1),
        (first, second + 1),
    ):
        if 0 < f <= s:
            accepted = merkle.verify_consistency(f, s, r1, r2, proof)
            same_shape = f < s and consistency_shape(f, s) == consistency_shape(first, second)
            assert accepted == same_shape


def test_an_indistinguishable_size_change_exists() -> None:
    """The smallest case of the above: leaf 0 of 3 and leaf 0 of 4 have the same path shape."""
    proof = merkle.inclusion_proof(REFERENCE_LEAVES, 0, 3)
    assert merkle.verify_inclusion(REFERENCE_LEAVES[0], 0, 4, proof, ROOTS[3])
    assert not merkle.verify_inclusion(REFERENCE_LEAVES[0], 0, 4, proof, ROOTS[4])


@settings(max_examples=100, deadline=None, database=None)
@given(entries=st.lists(st.binary(max_size=40), max_size=64))
def test_frontier_tracks_the_root_and_round_trips(entries: list[bytes]) -> None:
    frontier = merkle.Frontier()
    by_leaf_hash = merkle.Frontier()
    for size, entry in enumerate(entries, start=1):
        frontier.append(entry)
        by_leaf_hash.append_leaf_hash(merkle.leaf_hash(entry))
        assert frontier.size == size
        assert frontier.root() == merkle.root(entries[:size])
        assert by_leaf_hash == frontier
        saved = frontier.to_json()
        assert len(saved) == size.bit_count()
        restored = merkle.Frontier.from_json(size, saved)
        assert restored == frontier
        assert restored.root() == frontier.root()
    assert frontier.root() == ref_mth([merkle.leaf_hash(entry) for entry in entries])


@settings(max_examples=20, deadline=None, database=None)
@given(salt=SALTS, size=st.integers(1, 300), resume_at=st.integers(0, 300))
def test_frontier_equals_root_at_every_size(salt: bytes, size: int, resume_at: int) -> None:
    entries = _entries(salt, size)
    frontier = merkle.Frontier()
    for count, entry in enumerate(entries, start=1):
        if count - 1 == resume_at:
            frontier = merkle.Frontier.from_json(frontier.size, frontier.to_json())
        frontier.append(entry)
        assert frontier.root() == merkle.root(entries[:count])


def test_a_million_leaves_need_no_recursion() -> None:
    # With every leaf equal, the root of any size has a cheap memoised reference.
    leaf = merkle.leaf_hash(b"event")

    @functools.cache
    def expected(n: int) -> bytes:
        if n == 1:
            return leaf
        k = _k(n)
        return _sha256(b"\x01" + expected(k) + expected(n - k))

    assert merkle.root_from_leaf_hashes([leaf] * 1_000_000) == expected(1_000_000)


def test_proofs_over_a_hundred_thousand_leaves() -> None:
    entries = _entries(b"big", 100_000)
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    root = merkle.root_from_leaf_hashes(leaves)
    proof = merkle.inclusion_proof(leaves, 76_543, 100_000)
    assert len(proof) == 17
    assert merkle.verify_inclusion(leaves[76_543], 76_543, 100_000, proof, root)
    first_root = merkle.root_from_leaf_hashes(leaves[:65_537])
    proof = merkle.consistency_proof(leaves, 65_537, 100_000)
    assert merkle.verify_consistency(65_537, 100_000, first_root, root, proof)


# ---------------------------------------------------------------------------------------------
# Edge cases and malformed input.

GOOD_LEAF = REFERENCE_LEAVES[5]
GOOD_PATH = merkle.inclusion_proof(REFERENCE_LEAVES, 5, 8)
SHORT = b"\x00" * 31
LONG = b"\x00" * 33


def test_the_good_inclusion_case_is_good() -> None:
    assert merkle.verify_inclusion(GOOD_LEAF, 5, 8, GOOD_PATH, ROOTS[8])
    assert merkle.verify_inclusion(
        bytearray(GOOD_LEAF), 5, 8, tuple(bytearray(node) for node in GOOD_PATH), ROOTS[8]
    )


@pytest.mark.parametrize(
    "args",
    [
        (GOOD_LEAF, -1, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, -3, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 8, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 9, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 5, 0, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 5, -8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 0, 0, [], merkle.EMPTY_ROOT),
        (ROOTS[1], 1, 1, [], ROOTS[1]),
        (ROOTS[2], 2, 2, [REFERENCE_LEAVES[0]], ROOTS[2]),
        (merkle.EMPTY_ROOT, 0, 0, [], merkle.EMPTY_ROOT),
        (GOOD_LEAF, 5, 2**64, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 5, 2**64 + 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, "5", 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 5, "8", GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 5.0, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, None, 8, GOOD_PATH, ROOTS[8]),
        (REFERENCE_LEAVES[0], False, True, [], ROOTS[1]),
        (GOOD_LEAF, 5, 8, None, ROOTS[8]),
        (GOOD_LEAF, 5, 8, b"".join(GOOD_PATH), ROOTS[8]),
        (GOOD_LEAF, 5, 8, "".join(node.hex() for node in GOOD_PATH), ROOTS[8]),
        (GOOD_LEAF, 5, 8, [node.hex() for node in GOOD_PATH], ROOTS[8]),
        (GOOD_LEAF, 5, 8, [*GOOD_PATH[:2], None], ROOTS[8]),
        (GOOD_LEAF, 5, 8, [*GOOD_PATH[:2], GOOD_PATH[2][:31]], ROOTS[8]),
        (GOOD_LEAF, 5, 8, [*GOOD_PATH[:2], GOOD_PATH[2] + b"\x00"], ROOTS[8]),
        (GOOD_LEAF, 5, 8, [*GOOD_PATH, b""], ROOTS[8]),
        (GOOD_LEAF, 5, 8, dict.fromkeys(GOOD_PATH, 0), ROOTS[8]),
        (GOOD_LEAF, 5, 8, iter(GOOD_PATH), ROOTS[8]),
        (None, 5, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF.hex(), 5, 8, GOOD_PATH, ROOTS[8]),
        (SHORT, 5, 8, GOOD_PATH, ROOTS[8]),
        (GOOD_LEAF, 5, 8, GOOD_PATH, None),
        (GOOD_LEAF, 5, 8, GOOD_PATH, ROOTS[8] + b"\x00"),
        (GOOD_LEAF, 5, 8, GOOD_PATH, ROOTS[8].hex()),
        (SHORT, 0, 1, [], SHORT),
        (LONG, 0, 1, [], LONG),
        (b"", 0, 1, [], b""),
    ],
)
def test_malformed_inclusion_input_is_false_not_an_error(args: tuple[Any, ...]) -> None:
    assert merkle.verify_inclusion(*args) is False


def test_single_leaf_tree() -> None:
    assert merkle.verify_inclusion(ROOTS[1], 0, 1, [], ROOTS[1])
    assert not merkle.verify_inclusion(ROOTS[1], 0, 1, [ROOTS[1]], ROOTS[1])
    assert not merkle.verify_inclusion(ROOTS[1], 0, 1, [], ROOTS[2])


GOOD_CONSISTENCY = merkle.consistency_proof(REFERENCE_LEAVES, 6, 8)


def test_equal_sizes_need_equal_roots_and_an_empty_proof() -> None:
    for size in range(1, 9):
        assert merkle.consistency_proof(REFERENCE_LEAVES, size, size) == []
        assert merkle.verify_consistency(size, size, ROOTS[size], ROOTS[size], [])
        assert not merkle.verify_consistency(size, size, ROOTS[size], ROOTS[size], [ROOTS[size]])
        other = ROOTS[size % 8 + 1]
        assert not merkle.verify_consistency(size, size, ROOTS[size], other, [])
        assert not merkle.verify_consistency(size, size, other, ROOTS[size], [])


@pytest.mark.parametrize(
    "args",
    [
        (0, 8, merkle.EMPTY_ROOT, ROOTS[8], GOOD_CONSISTENCY),
        (0, 8, merkle.EMPTY_ROOT, ROOTS[8], []),
        (0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, []),
        (0, 1, merkle.EMPTY_ROOT, ROOTS[1], []),
        (-6, 8, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        (6, -8, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        (8, 6, ROOTS[8], ROOTS[6], GOOD_CONSISTENCY),
        (8, 6, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        (7, 6, ROOTS[7], ROOTS[6], []),
        (6, 8, ROOTS[6], ROOTS[8], []),
        (6, 2**64 + 8, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        ("6", 8, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        (6, 8.0, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        (None, 8, ROOTS[6], ROOTS[8], GOOD_CONSISTENCY),
        (True, True, ROOTS[1], ROOTS[1], []),
        (6, 8, ROOTS[6], ROOTS[8], None),
        (6, 8, ROOTS[6], ROOTS[8], b"".join(GOOD_CONSISTENCY)),
        (6, 8, ROOTS[6], ROOTS[8], [node.hex() for node in GOOD_CONSISTENCY]),
        (6, 8, ROOTS[6], ROOTS[8], [*GOOD_CONSISTENCY[:2], None]),
        (6, 8, ROOTS[6], ROOTS[8], [*GOOD_CONSISTENCY[:2], GOOD_CONSISTENCY[2][:31]]),
        (6, 8, ROOTS[6], ROOTS[8], [*GOOD_CONSISTENCY, b""]),
        (6, 8, ROOTS[6], ROOTS[8], iter(GOOD_CONSISTENCY)),
        (6, 8, None, ROOTS[8], GOOD_CONSISTENCY),
        (6, 8, ROOTS[6], None, GOOD_CONSISTENCY),
        (6, 8, ROOTS[6].hex(), ROOTS[8], GOOD_CONSISTENCY),
        (6, 8, ROOTS[6] + b"\x00", ROOTS[8], GOOD_CONSISTENCY),
        (6, 8, ROOTS[6], ROOTS[8][:31], GOOD_CONSISTENCY),
        (3, 3, SHORT, SHORT, []),
        (3, 3, b"", b"", []),
    ],
)
def test_malformed_consistency_input_is_false_not_an_error(args: tuple[Any, ...]) -> None:
    assert merkle.verify_consistency(*args) is False


@pytest.mark.parametrize(
    ("index", "size"), [(8, 8), (9, 8), (-1, 8), (0, 0), (0, -1), (0, 9), (8, 9), (1.0, 8)]
)
def test_impossible_inclusion_proofs_raise(index: Any, size: Any) -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(REFERENCE_LEAVES, index, size)


@pytest.mark.parametrize(
    ("first", "second"), [(0, 8), (0, 0), (-1, 8), (8, 7), (3, 2), (1, 9), (9, 9), (1, 8.0)]
)
def test_impossible_consistency_proofs_raise(first: Any, second: Any) -> None:
    with pytest.raises(ValueError):
        merkle.consistency_proof(REFERENCE_LEAVES, first, second)


def test_proofs_use_only_the_requested_prefix() -> None:
    # A longer log must give the same proofs for an older size: proofs are of D[0:size].
    more = [*REFERENCE_LEAVES, merkle.leaf_hash(b"later")]
    assert merkle.inclusion_proof(more, 2, 5) == merkle.inclusion_proof(REFERENCE_LEAVES[:5], 2, 5)
    assert merkle.consistency_proof(more, 3, 7) == merkle.consistency_proof(
        REFERENCE_LEAVES[:7], 3, 7
    )


@pytest.mark.parametrize(
    ("size", "hashes"),
    [
        (-1, []),
        (1, []),
        (0, [ROOTS[1]]),
        (3, [ROOTS[2]]),
        (4, [ROOTS[4], ROOTS[1]]),
        (1, [SHORT]),
        (1, [LONG]),
        (1, [ROOTS[1].hex()]),
        (1, ROOTS[1]),
        (1.0, [ROOTS[1]]),
        (True, [ROOTS[1]]),
    ],
)
def test_frontier_rejects_inconsistent_state(size: Any, hashes: Any) -> None:
    with pytest.raises(ValueError):
        merkle.Frontier(size, hashes)


@pytest.mark.parametrize(
    ("size", "data"),
    [
        (1, []),
        (1, ["zz" * 32]),
        (1, [ROOTS[1].hex().upper()]),
        (1, [ROOTS[1].hex()[:62]]),
        (1, [ROOTS[1].hex() + "00"]),
        (1, [" " + ROOTS[1].hex()[1:]]),
        (1, [ROOTS[1]]),
        (1, [None]),
        (1, ROOTS[1].hex()),
        (1, None),
        (2, [ROOTS[1].hex(), ROOTS[1].hex()]),
        (-1, []),
    ],
)
def test_frontier_from_json_rejects_bad_data(size: Any, data: Any) -> None:
    with pytest.raises(ValueError):
        merkle.Frontier.from_json(size, data)


def test_frontier_rejects_a_leaf_hash_that_is_not_a_hash() -> None:
    frontier = merkle.Frontier()
    with pytest.raises(ValueError):
        frontier.append_leaf_hash(b"event")
    assert frontier.size == 0
    assert frontier.root() == merkle.EMPTY_ROOT


def test_frontier_copies_its_input() -> None:
    hashes = [bytearray(COMPACT_TREES[3][0]), bytearray(COMPACT_TREES[3][1])]
    frontier = merkle.Frontier(3, hashes)
    hashes[0][0] ^= 1
    assert frontier.root() == ROOTS[3]


def test_importing_the_module_loads_neither_flask_nor_a_database_driver() -> None:
    code = (
        "import sys\n"
        "import registry.services.merkle\n"
        "heavy = {'flask', 'sqlalchemy', 'psycopg', 'flask_sqlalchemy', 'cryptography'}\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.strip() == "[]"


# --- proofs from stored nodes, as the registry serves them -----------------------------------


def _stored(leaves: Sequence[bytes]) -> dict[merkle.Node, bytes]:
    """Every node the appends complete, as the log stores them."""
    frontier = merkle.Frontier()
    completed: list[tuple[merkle.Node, bytes]] = []
    for leaf in leaves:
        frontier.append_leaf_hash(leaf, completed)
    return dict(completed)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=600), st.data())
def test_proofs_from_stored_nodes_are_the_proofs_from_every_leaf(size: int, data: Any) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    nodes = _stored(leaves)
    # About two stored nodes per leaf, each complete: level l index i covers 2**l leaves.
    assert len(nodes) == 2 * size - size.bit_count()

    def mth(lo: int, hi: int) -> bytes:
        return merkle.range_hash(merkle.range_nodes(lo, hi), nodes)

    assert mth(0, size) == merkle.root_from_leaf_hashes(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    path = [mth(lo, hi) for lo, hi in merkle.inclusion_ranges(index, size)]
    assert path == merkle.inclusion_proof(leaves, index, size)
    assert merkle.verify_inclusion(leaves[index], index, size, path, mth(0, size))
    first = data.draw(st.integers(min_value=1, max_value=size))
    proof = [mth(lo, hi) for lo, hi in merkle.consistency_ranges(first, size)]
    assert proof == merkle.consistency_proof(leaves, first, size)
    assert merkle.verify_consistency(first, size, mth(0, first), mth(0, size), proof)
