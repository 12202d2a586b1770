"""Links inside a data folder, and a folder given where a space is (issue 31, items 11 and 12; docs/RELIABILITY.md
row 36): real symbolic links and real images in ``tmp_path``."""

from __future__ import annotations

import logging
import os

import pytest

from search._errors import SpaceError
from search.data import load_dataset

from ..helpers import cnn_search


def _total(bundle) -> int:
    return sum(sum(counts.values()) for counts in bundle.class_counts.values())


def test_links_that_loop_are_skipped_and_said_and_the_walk_ends(make_folder):
    """A link to a parent folder, or two links to each other, gave a traceback (Too many levels of links)."""
    root = make_folder({"ant": 6, "bee": 6})
    os.symlink("..", root / "ant" / "up")  # back to the root
    os.symlink("b", root / "bee" / "a")  # two links pointing at each other
    os.symlink("a", root / "bee" / "b")
    bundle = load_dataset(root)
    assert _total(bundle) == 12  # each image once
    reasons = dict(bundle.skipped)
    assert reasons[str(root / "ant" / "up")] == f"the same folder as {root} (reached again by a link): counted once"
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
    counts = {name: sum(c[name] for c in bundle.class_counts.values()) for name in ("ant", "bee")}
    assert counts == {"ant": 9, "bee": 6}  # the bees stay bees, the linked folder counts once
    reasons = dict(bundle.skipped)
    assert reasons[str(root / "ant" / "again")].startswith(f"the same folder as {root / 'ant' / 'more'}")
    assert reasons[str(root / "ant" / "bees")].startswith(f"the same folder as {root / 'bee'}")
    said = cnn_search("data", str(root))
    assert said.returncode == 0, said.stderr[-2000:]
    assert "counted once" in said.stdout + said.stderr and "Traceback" not in said.stderr


def test_colour_images_made_grayscale_on_request_are_said(make_folder, caplog):
    root = make_folder({"ant": 4, "bee": 4})
    with caplog.at_level(logging.WARNING, logger="search"):
        bundle = load_dataset(root, color_mode="grayscale")
    assert bundle.input_shape[-1] == 1
    assert "8 of 8 image(s) have colour; color_mode grayscale: they are converted to grayscale" in caplog.text


def test_a_folder_given_as_the_space_is_said_to_be_a_folder(tmp_path, make_folder):
    """`cnn-search run DIR` said "no such file" of a folder that was there."""
    root = make_folder({"ant": 2, "bee": 2})
    with pytest.raises(SpaceError, match="a folder, not a space; expected a space's YAML file or one of") as info:
        from search.space import load_space

        load_space(root)
    assert f"received the folder {root}" in str(info.value) and "--data FOLDER" in str(info.value)
    out = cnn_search("run", str(root), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1 and "a folder, not a space" in out.stderr and "Traceback" not in out.stderr
