"""The one write-aside-then-rename helper: complete or absent, never half-written."""

import os
import stat
import subprocess
import sys

import pytest

from edit2perceive.io.atomic import (
    STAGING_PREFIX,
    atomic_file,
    atomic_files,
    atomic_folder,
    clean_stale_staging,
    publish_folder,
    write_text_atomic,
)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_file_replaces_whole_and_is_0644(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    write_text_atomic(target, "old")
    old_umask = os.umask(0o022)
    try:
        write_text_atomic(target, "new")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "new"
    assert _mode(target) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_atomic_file_error_leaves_old_file_and_no_staging(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as staged:
        staged.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_staging_name_keeps_suffix(tmp_path):
    with atomic_file(tmp_path / "clip.mp4") as staged:
        assert staged.name.startswith(STAGING_PREFIX) and staged.suffix == ".mp4"
        assert staged.parent == tmp_path
        staged.write_bytes(b"x")


def test_atomic_files_all_or_nothing(tmp_path):
    with pytest.raises(ValueError), atomic_files(tmp_path, ["a.txt", "b.txt"]) as staged:
        staged["a.txt"].write_text("a")
        raise ValueError("second file failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_files(tmp_path, ["a.txt", "b.txt"]) as staged:
        for name, path in staged.items():
            path.write_text(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_atomic_folder_replaces_old_folder_and_restores_it_on_error(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyError), atomic_folder(target) as staged:
        (staged / "new.txt").write_text("new")
        raise KeyError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_folder(target) as staged:
        (staged / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_publish_folder_puts_old_back_when_rename_fails(tmp_path, monkeypatch):
    target, staged = tmp_path / "run", tmp_path / "staged"
    target.mkdir()
    (target / "kept").write_text("1")
    staged.mkdir()
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src) == str(staged):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        publish_folder(staged, target)
    assert (target / "kept").read_text() == "1"


def test_killed_writer_leaves_only_staging_which_is_cleaned(tmp_path):
    code = (
        "import os, sys\n"
        "from edit2perceive.io.atomic import atomic_file\n"
        f"with atomic_file({str(tmp_path / 'big.bin')!r}) as p:\n"
        "    p.write_bytes(b'x' * 10)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9
    left = list(tmp_path.iterdir())
    assert [p.name.startswith(STAGING_PREFIX) for p in left] == [True]  # no big.bin
    live = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-abcd-live.txt"
    live.write_text("being written by this process")
    assert clean_stale_staging(tmp_path) == left
    assert list(tmp_path.iterdir()) == [live]
