"""Links inside a data folder, and a folder given where a space is (issue 31, items 11 and 12; docs/RELIABILITY.md
row 36): real symbolic links and real images in ``tmp_path``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from search._errors import SpaceError
from search.data import load_dataset

from ..helpers import cnn_search


def _total(bundle) -> int:
    return sum(sum(counts.values()) for counts in bundle.class_counts.values())


def _per_class(bundle) -> dict[str, int]:
    return {name: sum(c[name] for c in bundle.class_counts.values()) for name in bundle.class_names}


def test_links_that_loop_are_skipped_and_said_and_the_walk_ends(make_folder):
    """A link to a parent folder, or two links to each other, gave a traceback (Too many levels of links)."""
    root = make_folder({"ant": 6, "bee": 6})
    os.symlink("..", root / "ant" / "up")  # back to the root
    os.symlink(".", root / "bee" / "here")  # its own folder
    os.symlink("b", root / "bee" / "a")  # two links pointing at each other
    os.symlink("a", root / "bee" / "b")
    bundle = load_dataset(root)
    assert _total(bundle) == 12  # each image once
    reasons = dict(bundle.skipped)
    assert reasons[str(root / "ant" / "up")] == (
        f"the same folder as {root} (reached again by a link): its 12 image(s) counted once"
    )
    assert reasons[str(root / "bee" / "here")].startswith(f"the same folder as {root / 'bee'} (reached again")
    for name in ("a", "b"):
        assert reasons[str(root / "bee" / name)].startswith("a symbolic link that cannot be followed (Too many levels")


def test_a_folder_link_inside_a_class_counts_its_images_once_in_their_own_class(make_folder, write_image, colours):
    """A link to a folder already in the data counted every image in it twice, silently."""
    root = make_folder({"ant": 6, "bee": 6})
    for i in range(3):
        write_image(root / "ant" / "more" / f"m{i}.png", colours["ant"])
    os.symlink("more", root / "ant" / "again")  # the same images a second way, sorted before the folder
    os.symlink(root / "bee", root / "ant" / "bees")  # another class's folder, linked into this one
    bundle = load_dataset(root)
    assert _per_class(bundle) == {"ant": 9, "bee": 6}  # the bees stay bees, the linked folder counts once
    reasons = dict(bundle.skipped)
    assert reasons[str(root / "ant" / "again")] == (
        f"the same folder as {root / 'ant' / 'more'} (reached again by a link): its 3 image(s) counted once"
    )
    assert reasons[str(root / "ant" / "bees")].endswith("its 6 image(s) counted once")
    said = cnn_search("data", str(root))
    assert said.returncode == 0, said.stderr[-2000:]
    assert "its 3 image(s) counted once" in said.stdout and "Traceback" not in said.stderr


def test_a_class_folder_that_is_a_link_to_another_class_or_the_root_is_no_class(make_folder, write_image, colours):
    """`cow -> bee` and `all -> .` were "empty class folder 'all' (and 'cow')"; `cow -> bee/sub` counted the
    bees of bee/sub a second time, as cows."""
    root = make_folder({"ant": 4, "bee": 4})
    for i in range(2):
        write_image(root / "bee" / "sub" / f"s{i}.png", colours["bee"])
    os.symlink("bee", root / "cow")
    os.symlink(".", root / "all")
    os.symlink("bee/sub", root / "calf")
    bundle = load_dataset(root)
    assert bundle.class_names == ("ant", "bee")
    assert _per_class(bundle) == {"ant": 4, "bee": 6}
    reasons = dict(bundle.skipped)
    assert reasons[str(root / "cow")] == (
        f"the same folder as {root / 'bee'} (reached again by a link): its 6 image(s) counted once"
    )
    assert reasons[str(root / "calf")].startswith(f"the same folder as {root / 'bee' / 'sub'}")
    assert reasons[str(root / "all")].endswith("its 10 image(s) counted once")


def test_a_class_folder_linked_to_a_folder_no_class_holds_is_a_class(make_folder, write_image, colours):
    """A link to a folder the walk does not reach otherwise (hidden) is followed, once."""
    root = make_folder({"ant": 6, "bee": 6})
    for i in range(6):
        write_image(root / ".store" / "cats" / f"c{i}.png", colours["cat"])
    os.symlink(".store/cats", root / "cat")
    os.symlink("../.store/cats", root / "ant" / "cats")  # a second way to them, from inside a class
    bundle = load_dataset(root)
    assert _per_class(bundle) == {"ant": 6, "bee": 6, "cat": 6}
    assert dict(bundle.skipped)[str(root / "ant" / "cats")].startswith(f"the same folder as {root / 'cat'} ")


def test_a_folder_nested_thousands_deep_is_walked(make_folder, write_image, colours):
    """The walk was recursive: 1,200 nested folders gave a RecursionError traceback."""
    import subprocess

    root = make_folder({"ant": 4, "bee": 4})
    fd = os.open(root / "ant", os.O_RDONLY)
    try:
        for _ in range(1200):  # made through file descriptors: the path grows past what mkdir -p handles well
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        deepest = f"/proc/self/fd/{fd}"
        write_image(Path(os.path.realpath(deepest)) / "deep.png", colours["ant"])
    finally:
        os.close(fd)
    try:
        bundle = load_dataset(root)
        assert _per_class(bundle) == {"ant": 5, "bee": 4} and bundle.skipped == []
    finally:  # pytest's own clean-up recurses too
        subprocess.run(["rm", "-rf", str(root / "ant" / "d")], check=True)


def test_a_folder_that_cannot_be_read_is_skipped_with_the_reason(make_folder, write_image, colours):
    """A class's sub-folder the system will not list (here: its path is over PATH_MAX) was a traceback."""
    import subprocess

    root = make_folder({"ant": 4, "bee": 4})
    fd = os.open(root / "ant", os.O_RDONLY)
    for _ in range(20):  # 20 x 251 characters: over the 4,096 bytes a path may have
        os.mkdir("d" * 250, dir_fd=fd)
        inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    try:
        bundle = load_dataset(root)
        assert _per_class(bundle) == {"ant": 4, "bee": 4}
        ((path, reason),) = bundle.skipped
        assert (
            path.startswith(str(root / "ant" / ("d" * 250)))
            and reason == "cannot read this folder (File name too long)"
        )
    finally:
        subprocess.run(["rm", "-rf", str(root / "ant" / ("d" * 250))], check=True)


@pytest.mark.slow
def test_run_on_a_folder_with_loops_trains_and_says_them(make_folder, tmp_path):
    """`cnn-search run --data DIR` with a loop inside gave a traceback before the first trial."""
    root = make_folder({"ant": 8, "bee": 8})
    os.symlink("..", root / "ant" / "up")
    os.symlink("b", root / "bee" / "a")
    os.symlink("a", root / "bee" / "b")
    runs = tmp_path / "runs"
    out = cnn_search("run", "tiny", "--data", str(root), "--trials", "1", "--epochs", "1", "--runs-dir", str(runs))
    assert out.returncode == 0, out.stderr[-3000:]
    said = " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr
    assert "3 unusable file(s) in" in said and "counted once" in said, said[-3000:]


def test_a_folder_given_as_the_space_is_said_to_be_a_folder(tmp_path, make_folder):
    """`cnn-search run DIR` said "no such file" of a folder that was there."""
    root = make_folder({"ant": 2, "bee": 2})
    with pytest.raises(SpaceError, match="a folder, not a space; expected a space's YAML file or one of") as info:
        from search.space import load_space

        load_space(root)
    assert str(info.value).startswith(f"{root}: ") and "received a folder" in str(info.value)
    assert "--data FOLDER" in str(info.value)
    out = cnn_search("run", str(root), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1 and "a folder, not a space" in out.stderr and "Traceback" not in out.stderr
    assert "cnn-search spaces" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_fifo_given_as_the_space_or_the_data_is_said_to_be_one(tmp_path):
    """A named pipe was "no such file" (and a read of it would hang)."""
    from search.data import DataError

    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    with pytest.raises(SpaceError, match=r"not a file but a FIFO \(named pipe\); expected a YAML file"):
        from search.space import load_space

        load_space(pipe)
    data = tmp_path / "data.npz"
    os.mkfifo(data)
    with pytest.raises(DataError, match=r"not a file but a FIFO \(named pipe\); expected an .npz file"):
        load_dataset(data)
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(DataError, match=r"not a file but a folder; .* does not end in \.npz"):
        load_dataset(tmp_path / "folder.npz")
