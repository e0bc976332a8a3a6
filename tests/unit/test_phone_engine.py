"""The softphone engine's one piece of low-level trickery: reading pjsua2 ByteVectors.

Needs the pjsua2 wheel (not Asterisk); skipped where it is not installed.
"""

from __future__ import annotations

import os

import pytest

pj = pytest.importorskip("pjsua2")

from dialerd.phone.engine import frame_bytes, vector_bytes_direct  # noqa: E402


@pytest.mark.parametrize("size", [0, 1, 320, 640, 1920])
def test_direct_read_matches_swig_iteration(size: int) -> None:
    data = os.urandom(size)
    vector = pj.ByteVector(data)
    assert vector_bytes_direct(vector) == bytes(vector) == data


def test_the_direct_read_is_the_one_chosen_on_this_build() -> None:
    assert frame_bytes is vector_bytes_direct


def test_a_frame_buffer_reads_back() -> None:
    frame = pj.MediaFrame()
    frame.buf = pj.ByteVector(b"\x01\x02\x03\x04")
    assert frame_bytes(frame.buf) == b"\x01\x02\x03\x04"
