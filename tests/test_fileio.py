"""Tests for bench.fileio: atomic writes whose files other users can read."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from bench.fileio import copy_atomic, write_json_atomic, write_npz_atomic, write_text_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_json_is_sorted_one_space_indented_and_newline_terminated(tmp_path):
    path = write_json_atomic(tmp_path / "a" / "out.json", {"zeta": 1, "alpha": [1, 2]})
    text = path.read_text(encoding="utf-8")
    assert text == '{\n "alpha": [\n  1,\n  2\n ],\n "zeta": 1\n}\n'


def test_failed_serialisation_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):  # NaN is not JSON; allow_nan=False refuses it
        write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_writer_that_raises_leaves_no_temporary(tmp_path):
    def boom(_handle):
        raise RuntimeError("disk on fire")

    from bench.fileio import write_atomic

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic(tmp_path / "x.bin", boom)
    assert list(tmp_path.iterdir()) == []


def test_files_follow_the_umask_not_mkstemps_0600(tmp_path, umask_022):
    """Records on a shared results folder must be readable by the other users (0644)."""
    paths = [
        write_json_atomic(tmp_path / "r.json", {"a": 1}),
        write_text_atomic(tmp_path / "t.md", "# hi\n"),
        write_npz_atomic(tmp_path / "s.npz", pred=np.zeros((2, 3), np.uint8)),
    ]
    paths.append(copy_atomic(paths[0], tmp_path / "copy" / "r.json"))
    assert [_mode(p) for p in paths] == [0o644] * 4


def test_a_stricter_umask_is_honoured(tmp_path):
    old = os.umask(0o077)
    try:
        path = write_json_atomic(tmp_path / "private.json", {"a": 1})
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_npz_round_trip_without_a_suffix_added(tmp_path):
    path = write_npz_atomic(tmp_path / "s.npz", pred=np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert path.name == "s.npz"
    with np.load(path) as data:
        np.testing.assert_array_equal(data["pred"], np.arange(6).reshape(2, 3))


def test_copy_keeps_the_bytes(tmp_path):
    src = tmp_path / "src.json"
    src.write_bytes(b'{"x": 1}\r\n')  # not the harness's layout: copied as is
    dst = copy_atomic(src, tmp_path / "dst.json")
    assert dst.read_bytes() == b'{"x": 1}\r\n'
