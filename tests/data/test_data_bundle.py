"""DataBundle: stratified splits, class order, fingerprints, pipelines, arrays, augmentation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from search.data import AUGMENTATION_KEYS, DataError, augmentation_layers, load_dataset, validate_augmentation


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_splits_are_stratified_within_one_image(digits):
    everything = np.concatenate([digits.labels(s) for s in ("train", "validation", "test")])
    per_class = np.bincount(everything)
    test = np.bincount(digits.labels("test"), minlength=10)
    validation = np.bincount(digits.labels("validation"), minlength=10)
    train = np.bincount(digits.labels("train"), minlength=10)
    assert np.all(np.abs(test - per_class * 0.25) <= 1)
    pool = per_class - test  # validation is 20% of what is left for training
    assert np.all(np.abs(validation - pool * 0.2) <= 1)
    assert np.all(np.abs(train - pool * 0.8) <= 1)
    assert digits.counts == {"train": 1077, "validation": 270, "test": 450}


def test_splits_are_disjoint_and_cover_everything(save_npz):
    x = np.arange(200, dtype=np.uint8).reshape(200, 1, 1, 1)  # each image is its own index
    path = save_npz(x=x, y=np.arange(200) % 4)
    bundle = load_dataset(path, validation_fraction=0.1, test_fraction=0.3)
    ids = [set(bundle.arrays(s)[0].ravel().tolist()) for s in ("train", "validation", "test")]
    assert [len(i) for i in ids] == [126, 14, 60]
    assert set.union(*ids) == set(range(200))
    assert sum(len(i) for i in ids) == 200


def test_limit_is_a_stratified_sample(digits):
    small = load_dataset("digits", limit=200)
    assert sum(small.counts.values()) == 200
    per_class = np.bincount(np.concatenate([small.labels(s) for s in ("train", "validation", "test")]))
    assert per_class.min() >= 19 and per_class.max() <= 21
    assert small.class_counts["test"] == {str(d): 5 for d in range(10)}


def test_class_order_and_counts(digits):
    assert digits.class_names == tuple(str(d) for d in range(10))
    assert digits.num_classes == 10
    assert list(digits.class_counts["train"]) == list(digits.class_names)
    assert sum(digits.class_counts["validation"].values()) == digits.counts["validation"]


def test_fingerprint_stable_in_process_and_across_processes(digits):
    again = load_dataset("digits")
    assert digits.fingerprint == again.fingerprint
    assert len(digits.fingerprint) == 16 and int(digits.fingerprint, 16) >= 0
    code = "from search.data import load_dataset; print(load_dataset('digits').fingerprint)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert other.stdout.strip() == digits.fingerprint


def test_fingerprint_changes_with_seed_split_size_or_a_pixel(digits, save_npz):
    assert load_dataset("digits", seed=1).fingerprint != digits.fingerprint
    assert load_dataset("digits", validation_fraction=0.25).fingerprint != digits.fingerprint
    x = np.random.default_rng(0).integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    y = np.arange(40) % 2
    base = load_dataset(save_npz("a.npz", x=x, y=y)).fingerprint
    assert load_dataset(save_npz("b.npz", x=x, y=y)).fingerprint == base  # the content, not the file name
    x[7, 3, 3] ^= 1
    assert load_dataset(save_npz("c.npz", x=x, y=y)).fingerprint != base


def test_folder_fingerprint_follows_file_content(make_folder, write_image):
    root = make_folder({"ant": 6, "bee": 6})
    first = load_dataset(root)
    assert load_dataset(root).fingerprint == first.fingerprint
    assert load_dataset(root, image_size=8).fingerprint != first.fingerprint
    write_image(root / "bee" / "bee_03.png", (31, 200, 30))  # one pixel value changed in one file
    assert load_dataset(root).fingerprint != first.fingerprint


def test_train_pipeline_shuffles_each_epoch_from_the_seed(digits):
    def epoch(ds):
        return np.concatenate([y.numpy() for _, y in ds])

    ds = digits.train(64)
    one, two = epoch(ds), epoch(ds)
    assert sorted(one) == sorted(two) == sorted(digits.labels("train"))
    assert not np.array_equal(one, two)  # reshuffled
    assert np.array_equal(one, epoch(load_dataset("digits").train(64)))  # same seed, same order
    x_val, y_val = digits.arrays("validation")
    images, labels = next(iter(digits.validation(1000)))
    assert np.array_equal(images.numpy(), x_val) and np.array_equal(labels.numpy(), y_val)  # fixed order
    assert images.dtype.name == "uint8" and tuple(images.shape[1:]) == digits.input_shape


def test_folder_arrays_match_the_pipeline(make_folder):
    bundle = load_dataset(make_folder({"ant": 6, "bee": 6, "cat": 6}))
    x, y = bundle.arrays("test")
    for cache in (False, True):
        images, labels = next(iter(bundle.test(100, cache=cache)))
        assert np.array_equal(images.numpy(), x) and np.array_equal(labels.numpy(), y)


def test_augmented_training_batches_stay_uint8_and_change_pixels():
    bundle = load_dataset("shapes", count=64, num_classes=2, image_size=16, seed=3)
    config = {"flip": "horizontal_and_vertical", "rotation": 0.2, "zoom": 0.2, "translation": 0.1, "contrast": 0.3}
    plain = next(iter(bundle.train(16)))[0].numpy()
    augmented, labels = next(iter(bundle.train(16, augment=config)))
    assert augmented.dtype.name == "uint8" and augmented.shape == plain.shape
    assert labels.shape == (16,)
    assert not np.array_equal(augmented.numpy(), plain)
    layers = augmentation_layers(config, seed=0)
    assert [type(layer).__name__ for layer in layers] == [
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomContrast",
    ]


def test_augmentation_config_errors():
    assert AUGMENTATION_KEYS == ("flip", "rotation", "zoom", "translation", "contrast")
    assert validate_augmentation({"flip": "none", "rotation": 0, "zoom": 0.1}) == {"zoom": 0.1}
    with pytest.raises(DataError) as info:
        validate_augmentation({"rotaion": 0.1, "zoom": 1.5, "flip": "horizonal", "contrast": "high"})
    assert str(info.value).splitlines() == [
        "augment.rotaion: unknown key 'rotaion'; expected one of flip, rotation, zoom, translation, contrast, "
        "received 'rotaion'. Did you mean 'rotation'?",
        "augment.zoom: out of range; expected a number from 0 to 0.9, received 1.5 (a float).",
        "augment.flip: unknown flip mode; expected one of horizontal, vertical, horizontal_and_vertical, or none, "
        "received the string 'horizonal'. Did you mean 'horizontal'?",
        "augment.contrast: wrong type; expected a number from 0 to 1.0, received the string 'high'.",
    ]


def test_batch_size_and_split_names_are_checked(digits):
    with pytest.raises(DataError, match=r"batch_size: wrong value; expected an integer >= 1, received 0\."):
        digits.train(0)
    with pytest.raises(DataError, match=r"unknown split 'valid'; expected one of train, validation, test"):
        digits.arrays("valid")  # type: ignore[arg-type]


def test_summary_lists_shape_classes_counts_and_fingerprint(digits):
    text = digits.summary()
    assert "images: 8x8x1 uint8 (grayscale), in memory" in text
    assert f"fingerprint: {digits.fingerprint}" in text
    assert "total              1077        270        450" in text
    assert "skipped: 0 file(s)" in text


def test_in_memory_batches_keep_each_image_with_its_label(digits):
    x, y = digits.arrays("train")
    expected = sorted((img.tobytes(), int(label)) for img, label in zip(x, y, strict=True))
    seen = []
    for images, labels in digits.train(50):
        assert images.shape[0] <= 50
        seen += [(img.tobytes(), int(label)) for img, label in zip(images.numpy(), labels.numpy(), strict=True)]
    assert sorted(seen) == expected
