"""Full-scale datasets of the study, read from --data-root.

Through torchvision: FGVC-Aircraft, Stanford Cars, Food-101, SUN397, DTD, Oxford-IIIT Pets,
Caltech-101, Flowers-102, CIFAR-10/100, EuroSAT. From their usual folder layouts: Stanford Dogs
and CUB-200-2011. Each comes with its real class names and the phrases prompts use.
Nothing is downloaded unless the user passes --download.
"""

from __future__ import annotations

from pathlib import Path

from synthbridge.data.base import DatasetBundle, FileImages, WrappedImages, stratified_split
from synthbridge.data.folders import phrase_from_folder
from synthbridge.data.registry import DATASETS
from synthbridge.errors import UserError

SPLIT_SEED = 0

# torchvision's Flowers102 has labels only; these are the dataset's 102 class names in label order.
FLOWERS102_CLASSES = [
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
    "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon", "colt's foot",
    "king protea", "spear thistle", "yellow iris", "globe flower", "purple coneflower", "peruvian lily",
    "balloon flower", "giant white arum lily", "fire lily", "pincushion flower", "fritillary", "red ginger",
    "grape hyacinth", "corn poppy", "prince of wales feathers", "stemless gentian", "artichoke", "sweet william",
    "carnation", "garden phlox", "love in the mist", "mexican aster", "alpine sea holly", "ruby-lipped cattleya",
    "cape flower", "great masterwort", "siam tulip", "lenten rose", "barbeton daisy", "daffodil", "sword lily",
    "poinsettia", "bolero deep blue", "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion",
    "petunia", "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura", "geranium",
    "orange dahlia", "pink-yellow dahlia", "cautleya spicata", "japanese anemone", "black-eyed susan",
    "silverbush", "californian poppy", "osteospermum", "spring crocus", "bearded iris", "windflower",
    "tree poppy", "gazania", "azalea", "water lily", "rose", "thorn apple", "morning glory", "passion flower",
    "lotus", "toad lily", "anthurium", "frangipani", "clematis", "hibiscus", "columbine", "desert-rose",
    "tree mallow", "magnolia", "cyclamen", "watercress", "canna lily", "hippeastrum", "bee balm", "ball moss",
    "foxglove", "bougainvillea", "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower",
    "trumpet creeper", "blackberry lily",
]
assert len(FLOWERS102_CLASSES) == 102


def _targets(dataset) -> list[int]:
    """Labels of a torchvision dataset, read from its index (no image is decoded)."""
    for attr in ("_labels", "targets", "y"):
        if hasattr(dataset, attr):
            return [int(t) for t in getattr(dataset, attr)]
    if hasattr(dataset, "_samples"):
        return [int(s[1]) for s in dataset._samples]
    raise TypeError(f"cannot read labels of {type(dataset).__name__}")


def _root(data_root) -> Path:
    if data_root is None:
        raise UserError("full-scale datasets need --data-root DIR (where the dataset files are or should go)")
    return Path(data_root).expanduser()


def _open(name: str, cls_name: str, data_root, download: bool, **kwargs):
    import torchvision.datasets as tvd

    try:
        return getattr(tvd, cls_name)(root=str(_root(data_root)), download=download, **kwargs)
    except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
        hint = "pass --download (needs network)" if not download else "check the network and the folder"
        raise UserError(f"dataset {name!r} not found under {str(data_root)!r} ({str(exc).splitlines()[0]}); {hint}") from None


def _phrase(name: str) -> str:
    return name.replace("_", " ").replace("/", " ").strip()


def _register_torchvision(name: str, cls_name: str, superclass: str, train_kwargs: dict | None, test_kwargs: dict | None,
                          classes_attr: str = "classes", fixed_classes: list[str] | None = None,
                          train_fraction: float = 0.5) -> None:
    """Register a torchvision dataset. Without split arguments it is split once, stratified, seeded."""

    @DATASETS.register(name)
    def load(data_root=None, download: bool = False) -> DatasetBundle:
        if train_kwargs is not None:
            train_ds = _open(name, cls_name, data_root, download, **train_kwargs)
            test_ds = _open(name, cls_name, data_root, download, **test_kwargs)
            train, test = WrappedImages(train_ds, _targets(train_ds)), WrappedImages(test_ds, _targets(test_ds))
            split = "official"
        else:
            full_ds = _open(name, cls_name, data_root, download)
            everything = WrappedImages(full_ds, _targets(full_ds))
            train_idx, test_idx = stratified_split(everything.targets, train_fraction, SPLIT_SEED)
            train, test = everything.subset(train_idx), everything.subset(test_idx)
            train_ds = full_ds
            split = f"stratified {train_fraction:.0%} train, seed {SPLIT_SEED}"
        classes = list(fixed_classes or getattr(train_ds, classes_attr))
        return DatasetBundle(name=name, classes=classes, phrases=[_phrase(c) for c in classes], superclass=superclass,
                             train=train, test=test,
                             info={"source": f"torchvision.datasets.{cls_name}", "split": split})


_register_torchvision("aircraft", "FGVCAircraft", "aircraft", {"split": "trainval"}, {"split": "test"})
_register_torchvision("cars", "StanfordCars", "car", {"split": "train"}, {"split": "test"})
_register_torchvision("food101", "Food101", "food", {"split": "train"}, {"split": "test"})
_register_torchvision("sun397", "SUN397", "scene", None, None)
_register_torchvision("dtd", "DTD", "texture", {"split": "train"}, {"split": "test"})
_register_torchvision("pets", "OxfordIIITPet", "pet", {"split": "trainval"}, {"split": "test"})
_register_torchvision("caltech101", "Caltech101", "object", None, None, classes_attr="categories")
_register_torchvision("flowers102", "Flowers102", "flower", {"split": "train"}, {"split": "test"},
                      fixed_classes=FLOWERS102_CLASSES)
_register_torchvision("cifar10", "CIFAR10", "object", {"train": True}, {"train": False})
_register_torchvision("cifar100", "CIFAR100", "object", {"train": True}, {"train": False})
_register_torchvision("eurosat", "EuroSAT", "satellite image of land", None, None, train_fraction=0.8)


@DATASETS.register("stanford_dogs")
def stanford_dogs(data_root=None, download: bool = False) -> DatasetBundle:
    """DATA_ROOT/stanford_dogs/{Images/<wnid-breed>/*.jpg, train_list.mat, test_list.mat} (lists/ also accepted)."""
    from scipy.io import loadmat

    root = _root(data_root) / "stanford_dogs"
    images = root / "Images"
    lists = next((d for d in (root, root / "lists") if (d / "train_list.mat").exists()), None)
    if not images.is_dir() or lists is None:
        raise UserError(f"Stanford Dogs not found: expected {str(images)!r} and train_list.mat/test_list.mat in "
                        f"{str(root)!r}; download it from its site (no automatic download)")
    folders = sorted(p.name for p in images.iterdir() if p.is_dir())
    label_of = {f: i for i, f in enumerate(folders)}

    def split(file: str) -> FileImages:
        names = [str(entry[0][0]) for entry in loadmat(str(lists / file))["file_list"]]
        return FileImages([images / n for n in names], [label_of[n.split("/")[0]] for n in names])

    classes = [phrase_from_folder(f) for f in folders]
    return DatasetBundle(name="stanford_dogs", classes=classes, phrases=[c.replace("_", " ") for c in classes],
                         superclass="dog", train=split("train_list.mat"), test=split("test_list.mat"),
                         info={"source": str(root), "split": "official lists"})


@DATASETS.register("cub200")
def cub200(data_root=None, download: bool = False) -> DatasetBundle:
    """DATA_ROOT/CUB_200_2011/{images/, images.txt, train_test_split.txt, image_class_labels.txt, classes.txt}."""
    root = _root(data_root) / "CUB_200_2011"
    needed = ["images.txt", "train_test_split.txt", "image_class_labels.txt", "classes.txt"]
    if not all((root / n).exists() for n in needed):
        raise UserError(f"CUB-200-2011 not found: expected {', '.join(needed)} in {str(root)!r}; "
                        f"download it from its site (no automatic download)")

    def table(file: str) -> dict[int, str]:
        rows = (line.split(" ", 1) for line in (root / file).read_text().splitlines() if line.strip())
        return {int(k): v.strip() for k, v in rows}

    paths, is_train, labels = table("images.txt"), table("train_test_split.txt"), table("image_class_labels.txt")
    folders = [v for _, v in sorted(table("classes.txt").items())]
    ids = sorted(paths)
    parts = {flag: [i for i in ids if is_train[i] == flag] for flag in ("1", "0")}
    make = lambda chosen: FileImages([root / "images" / paths[i] for i in chosen], [int(labels[i]) - 1 for i in chosen])
    classes = [phrase_from_folder(f) for f in folders]
    return DatasetBundle(name="cub200", classes=classes, phrases=classes, superclass="bird",
                         train=make(parts["1"]), test=make(parts["0"]),
                         info={"source": str(root), "split": "official train_test_split.txt"})
