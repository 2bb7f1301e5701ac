import warnings

import numpy as np
import pytest

from helpers import write_imagefolder, write_synthetic_folder
from synthbridge.data import DATASETS, load_dataset, load_synthetic
from synthbridge.data.folders import phrase_from_folder
from synthbridge.errors import UserError
from synthbridge.io import safe_name


def test_few_shot_is_deterministic_per_seed():
    a = load_dataset("mnist5k", shots=3, seed=1)
    b = load_dataset("mnist5k", shots=3, seed=1)
    c = load_dataset("mnist5k", shots=3, seed=2)
    assert len(a.train) == 30 and np.bincount(a.train.targets).tolist() == [3] * 10
    assert a.train.indices == b.train.indices
    assert a.train.indices != c.train.indices
    assert len(a.test) == 4000


def test_too_many_shots_is_an_error():
    with pytest.raises(UserError, match="more than class"):
        load_dataset("digits", shots=1000)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UserError, match="mnist5k"):
        load_dataset("mnist6k")


def _downloaded_datasets() -> list[str]:
    """Every registered dataset that lives under --data-root (the embedded ones ship with their packages)."""
    from synthbridge.experiments.estimate import KNOWN_SIZES

    assert set(KNOWN_SIZES) <= set(DATASETS.names())
    return [name for name in DATASETS.names() if name not in ("mnist5k", "digits")]


@pytest.mark.parametrize("name", _downloaded_datasets())
def test_full_scale_dataset_without_files_is_a_clear_error(tmp_path, name):
    with pytest.raises(UserError, match="not found|--data-root"):
        load_dataset(name, data_root=tmp_path)


def test_full_scale_dataset_needs_data_root():
    with pytest.raises(UserError, match="--data-root"):
        load_dataset("aircraft")


def test_registry_has_the_study_datasets():
    for name in ["mnist5k", "digits", "aircraft", "cars", "food101", "sun397", "dtd", "pets", "caltech101",
                 "flowers102", "stanford_dogs", "cub200", "cifar10", "cifar100", "eurosat"]:
        assert name in DATASETS


@pytest.mark.parametrize("name", _downloaded_datasets())
def test_every_downloaded_dataset_has_known_sizes_for_a_plan(name):
    """`run --plan` prices a grid before its datasets are downloaded: every such dataset's split sizes are known."""
    from synthbridge.experiments.estimate import KNOWN_SIZES, planning_bundle

    classes, train, test = KNOWN_SIZES[name]
    bundle = planning_bundle(name, data_root=None)
    assert (bundle.num_classes, len(bundle.train), len(bundle.test)) == (classes, train, test)
    assert 2 <= classes <= 1000 and train > 0 and test > 0


def test_imagefolder_with_awkward_class_names(tmp_path):
    classes = ["Boeing 737", "Ünïcode café", "a-b"]
    bundle = load_dataset(f"imagefolder:{write_imagefolder(tmp_path / 'd', classes)}")
    assert bundle.classes == sorted(classes)
    assert len(bundle.train) == 9 and len(bundle.test) == 9
    assert bundle.train[0][0].mode == "RGB"


def test_imagefolder_errors(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(UserError, match="no class folders"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    root = write_imagefolder(tmp_path / "d", ["a", "b"])
    (root / "train" / "c").mkdir()
    with pytest.raises(UserError, match="class 'c' has no images"):
        load_dataset(f"imagefolder:{root}")


def test_corrupt_image_is_skipped_with_one_log_line(tmp_path, caplog):
    root = write_imagefolder(tmp_path / "d", ["a", "b"])
    (root / "train" / "a" / "0.png").write_bytes(b"not a png")
    bundle = load_dataset(f"imagefolder:{root}")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING"):
        warnings.simplefilter("always")
        items = [bundle.train[i] for i in range(len(bundle.train))]
    assert len(items) == 6 and all(image.size == (16, 16) for image, _ in items)
    lines = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and not caught  # one line, no Python warning
    assert len(bundle.train.unreadable) == 1


@pytest.mark.parametrize("name", ["a b", "a/b", "../x", "Ünï", "CON", "", "x" * 300])
def test_safe_name_is_a_safe_unique_folder_name(name):
    folder = safe_name(name)
    assert folder and "/" not in folder and "\\" not in folder and folder not in (".", "..")
    assert len(folder.encode()) < 255
    assert safe_name(name) == folder
    assert safe_name(name + "!") != folder


def test_phrase_from_folder_names():
    assert phrase_from_folder("001.Black_footed_Albatross") == "Black footed Albatross"
    assert phrase_from_folder("n02085620-Chihuahua") == "Chihuahua"


def test_synthetic_folder_matches_classes_by_name(tmp_path):
    classes = ["zero", "one", "two"]
    root = write_synthetic_folder(tmp_path / "s", ["two", "zero", "one"], per_class=2)
    images = load_synthetic(root, classes)
    assert len(images) == 6
    # labels follow the real dataset's class order, not the folder order
    for path, label in zip(images.paths, images.targets):
        assert path.parent.name == safe_name(classes[label])


def test_synthetic_folder_without_manifest_uses_folder_names(tmp_path):
    root = write_synthetic_folder(tmp_path / "s", ["a b", "c/d"], per_class=2, manifest=False)
    images = load_synthetic(root, ["c/d", "a b"])
    assert sorted(images.targets) == [0, 0, 1, 1]


def test_synthetic_folder_class_mismatch_is_an_error(tmp_path):
    root = write_synthetic_folder(tmp_path / "s", ["0", "1", "x"], per_class=1)
    with pytest.raises(UserError, match="'x', which the dataset lacks"):
        load_synthetic(root, ["0", "1", "2"])
    root = write_synthetic_folder(tmp_path / "t", ["0", "1"], per_class=1)
    with pytest.raises(UserError, match="no images for classes '2'"):
        load_synthetic(root, ["0", "1", "2"])
    with pytest.raises(UserError, match="does not exist"):
        load_synthetic(tmp_path / "nothing", ["0"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        load_synthetic(tmp_path / "empty", ["0"])


def test_imagefolder_classes_are_exactly_those_torchvision_finds(tmp_path):
    from torchvision.datasets import ImageFolder

    root = write_imagefolder(tmp_path / "data", ["..dots", ".hidden", "cat", "dog", "Zebra"], per_class=2, size=16)
    bundle = load_dataset(f"imagefolder:{root}")
    assert bundle.classes == ImageFolder(str(root / "train")).classes == ["..dots", ".hidden", "Zebra", "cat", "dog"]
    assert len(bundle.train) == 10 and bundle.image_size == 16  # small images: the embedded training profile
