"""Issue 12 part 2: roots never overlap. `add_root` registers a folder by its real path; a
folder covered by a root (the same folder, or one inside it) gets that root back; a wider
folder absorbs the roots inside it."""

from __future__ import annotations

from photosearch.storage import Library
from photosearch.storage import roots as root_sql


def test_names_of_one_folder_are_one_root(tmp_path):
    real = tmp_path / "data" / "photos"
    (real / "2020").mkdir(parents=True)
    (tmp_path / "Pictures").symlink_to(real)
    with Library.in_memory() as lib:
        assert lib.add_root(real).path == str(real)
        for alias in (tmp_path / "Pictures", f"{real}/", f"{real}/2020/..", tmp_path / "Pictures" / "2020"):
            assert lib.add_root(alias).path == str(real)
        assert [r.path for r in lib.roots()] == [str(real)]


def test_a_wider_folder_absorbs_the_roots_inside_it(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    with Library.in_memory() as lib:
        lib.add_root(tmp_path / "a" / "b")
        lib.add_root(tmp_path / "c")
        assert lib.add_root(tmp_path).path == str(tmp_path)
        assert [r.path for r in lib.roots()] == [str(tmp_path)]


def test_the_same_folder_by_inode_is_the_same_root(tmp_path):
    """A bind mount is another name with the same inode; a link given unresolved stands in."""
    real = tmp_path / "photos"
    real.mkdir()
    (tmp_path / "bind").symlink_to(real)
    with Library.in_memory() as lib:
        lib.add_root(real)
        with lib._write() as tx:  # bypass realpath, as a bind mount would
            assert root_sql.add(tx.session, str(tmp_path / "bind")).path == str(real)


def test_a_root_can_be_removed_by_any_of_its_names(tmp_path):
    real = tmp_path / "photos"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with Library.in_memory() as lib:
        lib.add_root(real)
        assert lib.remove_root(tmp_path / "link") and lib.roots() == []
