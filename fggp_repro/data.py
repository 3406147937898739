"""Datasets by name, held whole as uint8 tensors on the training device, with on-device augmentation.

A dataset is ``(train_x, train_y, test_x, test_y)``: images ``uint8[N, 3, 32, 32]`` and labels
``int64[N]``. Random crop (4-pixel zero padding) and horizontal flip run per sample on the device as
one gather per batch, from generators seeded by (seed, epoch), so a run's data stream depends on its
seed and nothing else (not on batch boundaries, worker counts or the device).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_image, read_file

from .seeding import generator
from .spec.config import UserError
from .spec.files import check_writable

# CIFAR-10 normalisation of docs/protocol.md (torchvision-style std of the authors' code)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataError(UserError, RuntimeError):
    """Missing or corrupt data; the CLI prints the message as one line and exits 2."""


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    fingerprint: str = ""  # sha256 of the decoded arrays of the whole dataset (before any training subset)

    def to(self, device) -> "Dataset":
        return Dataset(self.name, *(t.to(device) for t in (self.train_x, self.train_y, self.test_x, self.test_y)),
                       fingerprint=self.fingerprint)


def default_root() -> Path:
    """Where datasets live unless --data-root says otherwise: $FGGP_DATA, else ~/.cache/fggp-data."""
    return Path(os.environ.get("FGGP_DATA", Path.home() / ".cache" / "fggp-data"))


def cache_dir() -> Path:
    return Path(os.environ.get("FGGP_CACHE", Path.home() / ".cache" / "fggp-repro"))


def fingerprint(ds: Dataset) -> str:
    """SHA-256 over the decoded arrays (name, dtype, shape, bytes of train_x, train_y, test_x, test_y).

    Two copies of a dataset that decode to the same pixels and labels have the same fingerprint, whatever
    their files look like; a lossy re-encoding, a missing image or a different decoder changes it."""
    h = hashlib.sha256()
    for name in ("train_x", "train_y", "test_x", "test_y"):
        a = getattr(ds, name).detach().cpu().contiguous().numpy()
        h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


#: the folder each dataset occupies under a data root
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar10-jpeg": "cifar10-jpeg"}
SETUP_HINT = {
    "cifar10": "run `fggp-repro data --from PATH` (PATH: cifar-10-python.tar.gz or a cifar-10-batches-py folder) "
               "or `fggp-repro data --download`",
    "cifar10-jpeg": "run `fggp-repro data --from PATH` (PATH: cifar10-jpeg.tar.gz or its unpacked folder)",
}


def _missing(name: str, what: str, root: Path) -> DataError:
    return DataError(f"{what} not found under {root}: {SETUP_HINT[name]}, or pass --data-root DIR "
                     "(the folder that holds it)")


# ---- genuine CIFAR-10 (python pickles) -----------------------------------------------------------

def _cifar10_base(root: Path) -> Path:
    """The cifar-10-batches-py folder under ``root``, or ``root`` itself when it is that folder."""
    if (root / "data_batch_1").is_file() and not (root / "cifar-10-batches-py").is_dir():
        return root
    return root / "cifar-10-batches-py"


def _load_cifar10(root: Path, download: bool) -> Dataset:
    base = _cifar10_base(root)
    if not base.is_dir() and download:
        download_cifar10(root)
    if not base.is_dir():
        raise _missing("cifar10", "CIFAR-10 (cifar-10-batches-py)", root)

    def read(names):
        xs, ys = [], []
        for n in names:
            p = base / n
            try:
                with open(p, "rb") as fh:
                    d = pickle.load(fh, encoding="latin1")
                x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                y = np.asarray(d["labels"], dtype=np.int64)
            except FileNotFoundError:
                raise _missing("cifar10", f"CIFAR-10 file {n}", base) from None
            except Exception as e:  # truncated pickle, wrong keys, wrong size
                raise DataError(f"corrupt CIFAR-10 file {p} ({type(e).__name__}: {e}); delete {base} and "
                                f"{SETUP_HINT['cifar10']}") from None
            xs.append(x)
            ys.append(y)
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    tx, ty = read([f"data_batch_{i}" for i in range(1, 6)])
    vx, vy = read(["test_batch"])
    return Dataset("cifar10", tx, ty, vx, vy)


# ---- image-folder copies (cifar10-jpeg) ------------------------------------------------------------

def _find_split(root: Path, split: str) -> Path | None:
    for cand in (root / split, root / "cifar10-jpeg" / split):
        if cand.is_dir():
            return cand
    return None


def _list_images(split_dir: Path) -> tuple[list[Path], list[int]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if len(classes) != 10:
        raise DataError(f"{split_dir} should hold 10 class folders, found {len(classes)}: is --data-root right?")
    files, labels = [], []
    for label, c in enumerate(classes):
        imgs = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        files += imgs
        labels += [label] * len(imgs)
    return files, labels


def _cache_path(split_dir: Path, files: list[Path]) -> Path:
    """The decoded-array cache file of an image folder, keyed by its path and its files' names and sizes."""
    key = hashlib.sha256()
    key.update(str(split_dir.resolve()).encode())
    for p in files:
        key.update(f"{p.parent.name}/{p.name}:{p.stat().st_size};".encode())
    return cache_dir() / "decoded" / f"{split_dir.name}-{key.hexdigest()[:20]}.npz"


def _decode_folder(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a CIFAR-layout image folder, caching the arrays (keyed by path, names and sizes)."""
    files, labels = _list_images(split_dir)
    if not files:
        raise DataError(f"no images under {split_dir}")
    cpath = _cache_path(split_dir, files)
    if cpath.is_file():
        try:
            with np.load(cpath) as z:
                return torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
        except Exception:
            cpath.unlink(missing_ok=True)  # a broken cache is rebuilt, never trusted

    x = torch.empty((len(files), 3, 32, 32), dtype=torch.uint8)
    for i, p in enumerate(files):
        try:
            with warnings.catch_warnings():
                # torchvision 0.29 deprecates its decoders in favour of torchcodec; they still decode exactly
                warnings.simplefilter("ignore", DeprecationWarning)
                img = decode_image(read_file(str(p)), mode=ImageReadMode.RGB)
        except Exception as e:
            raise DataError(f"corrupt image {p} ({e}); re-extract the dataset") from None
        if tuple(img.shape) != (3, 32, 32):
            raise DataError(f"image {p} is {tuple(img.shape)}, expected 3x32x32: not a CIFAR-layout folder")
        x[i] = img
    y = torch.tensor(labels, dtype=torch.int64)
    tmp = cpath.with_suffix(f".tmp{os.getpid()}.npz")
    try:
        cpath.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, x=x.numpy(), y=y.numpy())
        os.replace(tmp, cpath)
    except OSError as e:  # an unwritable cache costs a decode next time, nothing else
        tmp.unlink(missing_ok=True)
        print(f"note: could not cache the decoded images in {cpath.parent} ({e.strerror or e}); set FGGP_CACHE "
              "to a writable folder to skip decoding next time", file=sys.stderr)
    finally:
        if tmp.exists():  # Ctrl-C while saving
            tmp.unlink(missing_ok=True)
    return x, y


def _load_image_folder(root: Path, name: str) -> Dataset:
    splits = {s: _find_split(root, s) for s in ("train", "test")}
    if None in splits.values():
        raise _missing(name, f"{name} image folder (train/ and test/)", root)
    tx, ty = _decode_folder(splits["train"])
    vx, vy = _decode_folder(splits["test"])
    return Dataset(name, tx, ty, vx, vy)


# ---- synthetic -----------------------------------------------------------------------------------

def synthetic(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """Seeded CIFAR-shaped data that a small network can learn: a smooth per-class pattern plus noise."""
    g = generator(seed, "synthetic")
    protos = F.interpolate(torch.rand(10, 3, 4, 4, generator=g), size=32, mode="bilinear", align_corners=False)

    def make(n):
        y = torch.arange(n) % 10
        y = y[torch.randperm(n, generator=g)]
        noise = torch.randn(n, 3, 32, 32, generator=g) * 0.25
        x = (protos[y] * 0.6 + 0.2 + noise).clamp(0, 1)
        return (x * 255).round().to(torch.uint8), y

    tx, ty = make(n_train)
    vx, vy = make(n_test)
    return Dataset("synthetic", tx, ty, vx, vy)


# ---- registry ------------------------------------------------------------------------------------

LOADERS: dict[str, Callable[..., Dataset]] = {
    "cifar10": lambda cfg, root: _load_cifar10(root, cfg.download),
    "cifar10-jpeg": lambda cfg, root: _load_image_folder(root, "cifar10-jpeg"),
    "synthetic": lambda cfg, root: synthetic(cfg.synthetic_train, cfg.synthetic_test),
}


def balanced_subset(y: torch.Tensor, n: int, seed: int, tag: str = "subset") -> torch.Tensor:
    """Sorted indices of a class-balanced subset: ``n / classes`` images of each class, seeded (stream ``tag``)."""
    classes = torch.unique(y)
    per = n // len(classes)
    g = generator(seed, tag)
    picks = []
    for c in classes.tolist():
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < per:
            raise DataError(f"train_subset {n} needs {per} images of class {c}, the data has {len(idx)}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per]])
    return torch.sort(torch.cat(picks)).values


def data_root(cfg) -> Path:
    """The folder a DataConfig reads from: its data_root, else :func:`default_root`."""
    return Path(cfg.data_root).expanduser() if cfg.data_root else default_root()


def present(cfg) -> bool:
    """Whether the dataset of a DataConfig is where it would be read from (a cheap look, nothing decoded)."""
    root = data_root(cfg)
    if cfg.dataset == "synthetic":
        return True
    if cfg.dataset == "cifar10":
        return _cifar10_base(root).is_dir()
    return all(_find_split(root, s) is not None for s in ("train", "test"))


def load(cfg) -> Dataset:
    """Load the dataset of a DataConfig (on the CPU), fingerprint it whole, then apply the training subset."""
    ds = LOADERS[cfg.dataset](cfg, data_root(cfg))
    ds.fingerprint = fingerprint(ds)
    if cfg.check_copy and cfg.dataset in KNOWN_FINGERPRINTS:
        check_copy(ds, cfg.dataset, data_root(cfg))
    if cfg.train_subset:
        if cfg.train_subset > len(ds.train_y):
            raise DataError(f"train_subset {cfg.train_subset} exceeds the {len(ds.train_y)} training images")
        idx = balanced_subset(ds.train_y, cfg.train_subset, cfg.subset_seed)
        ds = Dataset(ds.name, ds.train_x[idx], ds.train_y[idx], ds.test_x, ds.test_y, ds.fingerprint)
    if cfg.test_subset:
        if cfg.test_subset > len(ds.test_y):
            raise DataError(f"test_subset {cfg.test_subset} exceeds the {len(ds.test_y)} test images")
        idx = balanced_subset(ds.test_y, cfg.test_subset, cfg.subset_seed, "test-subset")
        ds = Dataset(ds.name, ds.train_x, ds.train_y, ds.test_x[idx], ds.test_y[idx], ds.fingerprint)
    return ds


# ---- set-up: `fggp-repro data` -------------------------------------------------------------------

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"  # $FGGP_CIFAR10_URL: a mirror
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # of cifar-10-python.tar.gz (torchvision's check too)
#: images per class in the complete CIFAR-10
FULL_PER_CLASS = {"train": 5000, "test": 1000}
#: the fingerprints (:func:`fingerprint`) of the complete copies the project knows: cifar10-jpeg's is the one every
#: record made from it states (``provenance.data_sha256``). Genuine CIFAR-10 has none yet: no run of the project has
#: read it, so only its counts are checked.
KNOWN_FINGERPRINTS = {
    "cifar10-jpeg": ("8cc0411c6016389fb3709294a960868743d6a5b735fdcc31c54bd6375224d638",),
    "cifar10": (),
}


def check_copy(ds: Dataset, name: str, root: Path) -> None:
    """Raise DataError unless ``ds`` (whole, fingerprinted) is a complete copy of ``name`` the project knows:
    the images per class of the complete CIFAR-10, and a known fingerprint where the package has one."""
    fix = ("set up the complete copy with `fggp-repro data --from PATH --force`, or pass --no-check-copy to train on "
           "this one under a run id of its own")
    for split, y in (("train", ds.train_y), ("test", ds.test_y)):
        counts = torch.bincount(y, minlength=10).tolist()
        want = FULL_PER_CLASS[split]
        if len(counts) != 10 or set(counts) != {want}:
            off = [f"{CLASSES[c] if c < 10 else f'label {c}'} {n:,}" for c, n in enumerate(counts) if n != want]
            where = ", ".join(off[:3]) + (f" and {len(off) - 3} more" if len(off) > 3 else "")
            raise DataError(f"the {name} data under {root} is not the complete dataset: {len(y):,} {split} images, "
                            f"not {10 * want:,} ({want:,} a class; here {where}): {fix}")
    known = KNOWN_FINGERPRINTS.get(name)
    if known and ds.fingerprint not in known:
        raise DataError(f"the {name} data under {root} has fingerprint {ds.fingerprint[:16]}…, not the known copy's "
                        f"{known[0][:16]}… (other pixels: another encoding or a damaged image): {fix}")


@dataclass
class SetupReport:
    """What ``fggp-repro data`` found and did."""

    name: str
    path: Path  # the dataset's folder
    root: Path  # the data root that holds it
    train_counts: list
    test_counts: list
    fingerprint: str
    status: str  # "installed" | "replaced" | "already set up" | "checked in place"

    @property
    def complete(self) -> bool:
        return (len(self.train_counts) == len(self.test_counts) == 10
                and set(self.train_counts) == {FULL_PER_CLASS["train"]}
                and set(self.test_counts) == {FULL_PER_CLASS["test"]})

    def lines(self) -> list[str]:
        out = [f"{self.name}: {self.status}: {self.path}",
               f"  train: {sum(self.train_counts)} images, per class {' '.join(map(str, self.train_counts))}",
               f"  test:  {sum(self.test_counts)} images, per class {' '.join(map(str, self.test_counts))}",
               f"  fingerprint (sha256 of the decoded arrays): {self.fingerprint}"]
        if not self.complete:
            out.append(f"  note: not the complete CIFAR-10 ({FULL_PER_CLASS['train']} training and "
                       f"{FULL_PER_CLASS['test']} test images in each of 10 classes): train, grid and verify refuse "
                       "it unless --no-check-copy")
        elif KNOWN_FINGERPRINTS.get(self.name) and self.fingerprint not in KNOWN_FINGERPRINTS[self.name]:
            known = KNOWN_FINGERPRINTS[self.name][0][:16]
            out.append(f"  note: not the fingerprint of the known {self.name} copy ({known}…): "
                       "train, grid and verify refuse it unless --no-check-copy")
        elif KNOWN_FINGERPRINTS.get(self.name):
            out.append(f"  the known {self.name} copy: the one the committed records were made from")
        if Path(os.path.abspath(self.root)) == Path(os.path.abspath(default_root())):
            out.append(f"  {self.root} is the default data root: train, grid and verify find it without --data-root")
        else:
            out.append(f"  train, grid and verify read it with --data-root {self.root} (or FGGP_DATA={self.root})")
        return out


class _Staging:
    """A temporary folder inside ``root`` (made if needed). On leaving, the temporary folder goes; on an
    error or Ctrl-C, so does every folder this made, so a failed set-up leaves nothing behind."""

    def __init__(self, root: Path):
        self.root = Path(os.path.abspath(root))

    def __enter__(self) -> Path:
        check_writable(self.root, "data root", "pass --data-root DIR to set the data up elsewhere")
        self.made = []
        p = self.root
        while not p.exists():
            self.made.append(p)
            p = p.parent
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=".fggp-data-", dir=self.root))
        except OSError as e:
            raise DataError(f"cannot write the data root {self.root} ({e.strerror or e}); "
                            "pass --data-root DIR to set the data up elsewhere") from None
        return self.path

    def __exit__(self, kind, value, tb):
        shutil.rmtree(self.path, ignore_errors=True)
        if kind is not None:
            for d in self.made:  # deepest first; stops at the first folder that is not empty
                try:
                    d.rmdir()
                except OSError:
                    break
        return False


def _detect(folder: Path, depth: int = 1) -> tuple[str, Path] | None:
    """(dataset name, its folder) for a cifar-10-batches-py folder or a cifar10-jpeg tree at or just under
    ``folder``."""
    if (folder / "data_batch_1").is_file():
        return "cifar10", folder
    if (folder / "cifar-10-batches-py" / "data_batch_1").is_file():
        return "cifar10", folder / "cifar-10-batches-py"
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return "cifar10-jpeg", folder
    if depth > 0 and folder.is_dir():
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                found = _detect(child, depth - 1)
                if found:
                    return found
    return None


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:  # compressed, but cut short or corrupt
        raise DataError(f"cannot read {path} as a tar archive ({type(e).__name__}: {e}): a truncated or corrupt "
                        "copy? Fetch it again") from None


def _unpack(tarball: Path, dest: Path) -> None:
    try:
        with tarfile.open(tarball) as tf:
            members = tf.getmembers()
            for m in members:
                parts = Path(m.name).parts
                if m.name.startswith("/") or ".." in parts or m.issym() or m.islnk() or m.isdev():
                    raise DataError(f"{tarball} holds an unsafe entry {m.name!r}; unpack it yourself and pass the "
                                    "folder")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover (Python < 3.11.4; every entry was checked above)
                tf.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(f"cannot unpack {tarball} ({type(e).__name__}: {e}): a truncated or corrupt copy? "
                        "Fetch it again") from None


def _read_staged(name: str, folder: Path) -> Dataset:
    """Load a dataset from its folder, named as it will be under the data root."""
    return _load_cifar10(folder.parent, download=False) if name == "cifar10" else _load_image_folder(folder, name)


def _cache_files(folder: Path) -> dict:
    """{split: decoded-array cache path} of an image-folder tree (empty for other layouts)."""
    out = {}
    for split in ("train", "test"):
        try:
            out[split] = _cache_path(folder / split, _list_images(folder / split)[0])
        except (DataError, OSError):
            pass
    return out


def _drop_cache(folder: Path) -> None:
    for path in _cache_files(folder).values():
        path.unlink(missing_ok=True)


def _report(ds: Dataset, name: str, path: Path, root: Path, status: str) -> SetupReport:
    counts = [torch.bincount(y, minlength=10).tolist() for y in (ds.train_y, ds.test_y)]
    return SetupReport(name, path, root, counts[0], counts[1], ds.fingerprint or fingerprint(ds), status)


def setup(source: str | Path | None, root: str | Path | None = None, *, force: bool = False,
          download: bool = False, log: Callable[[str], None] = lambda line: None) -> SetupReport:
    """Put a dataset under ``root`` (default: :func:`default_root`) and check it: ``source`` is the cifar10-jpeg
    tarball or folder, or CIFAR-10's cifar-10-python.tar.gz or cifar-10-batches-py folder; ``download=True``
    fetches genuine CIFAR-10 instead. Counts images per class and fingerprints the decoded arrays.

    Everything is unpacked or copied into a temporary folder inside ``root`` and checked there; only a
    complete, readable dataset is moved into place (``root/cifar10-jpeg`` or ``root/cifar-10-batches-py``).
    An existing copy with the same fingerprint is left alone; a different one is replaced only with ``force``.
    ``log`` gets a progress line once the inputs are known to be usable (so a bad input is one line only).
    """
    root = Path(os.path.abspath(Path(root).expanduser() if root else default_root()))
    if not download:
        source = Path(source).expanduser()
        if not source.exists():
            raise DataError(f"{source} not found: pass the cifar10-jpeg tarball or folder, or cifar-10-python.tar.gz "
                            "or a cifar-10-batches-py folder")
        found = _detect(source) if source.is_dir() else None
        if found and found[0] in FOLDERS and Path(os.path.abspath(found[1])) == root / FOLDERS[found[0]]:
            name, folder = found  # already in place: check it where it is
            log(f"checking {folder} ...")
            ds = _read_staged(name, folder)
            ds.fingerprint = fingerprint(ds)
            return _report(ds, name, folder, root, "checked in place")
    with _Staging(root) as staging:
        if download:
            tarball = staging / "cifar-10-python.tar.gz"
            _download(tarball, log)
            _unpack(tarball, staging / "unpacked")
        elif source.is_dir():
            found = _detect(source)
            if found is None:
                raise DataError(f"{source} holds neither a cifar10-jpeg tree (train/ and test/ with one folder per "
                                "class) nor CIFAR-10's cifar-10-batches-py: point --from at one of them")
            name, folder = found
            log(f"copying {folder} into {root} and checking it ...")
            staged = staging / "unpacked" / FOLDERS[name]
            try:
                if name == "cifar10":
                    shutil.copytree(folder, staged)
                else:
                    for split in ("train", "test"):
                        shutil.copytree(folder / split, staged / split)
            except OSError as e:
                raise DataError(f"cannot copy {folder} into {root} ({e.strerror or e})") from None
        elif _is_tar(source):
            log(f"unpacking {source} into {root} and checking it ...")
            _unpack(source, staging / "unpacked")
        else:
            raise DataError(f"{source} is neither a folder nor a tar archive: pass the cifar10-jpeg tarball or "
                            "folder, or cifar-10-python.tar.gz or a cifar-10-batches-py folder")
        found = _detect(staging / "unpacked")
        if found is None:
            raise DataError(f"{source or 'the download'} holds neither a cifar10-jpeg tree (train/ and test/) nor "
                            "cifar-10-batches-py")
        name, folder = found
        staged = staging / FOLDERS[name]
        os.replace(folder, staged)
        try:
            try:
                ds = _read_staged(name, staged)
            except DataError as e:  # name the input, not the staging folder that is removed on the way out
                why = str(e).replace(str(staged), FOLDERS[name])
                for fix in (": is --data-root right?", "; re-extract", "; delete ", ": run `"):  # fixes for a data root
                    why = why.split(fix)[0]
                raise DataError(f"{source or 'the download'} is not a usable copy of {name}: {why}; nothing was "
                                "kept") from None
            ds.fingerprint = fingerprint(ds)
            dest = root / FOLDERS[name]
            status = "installed"
            if dest.exists():
                try:
                    old = _read_staged(name, dest)
                    old_fp = fingerprint(old)
                except DataError:
                    old_fp = None
                if old_fp == ds.fingerprint:
                    _drop_cache(staged)
                    return _report(ds, name, dest, root, "already set up (the same fingerprint)")
                if not force:
                    what = f"a different copy (fingerprint {old_fp[:16]})" if old_fp else "an unreadable copy"
                    raise DataError(f"{dest} already holds {what} of {name}: pass --force to replace it, or "
                                    "--data-root DIR to set this one up elsewhere")
                os.replace(dest, staging / "replaced")
                status = "replaced"
            caches = _cache_files(staged)
            os.replace(staged, dest)
        except BaseException:
            _drop_cache(staged)
            raise
        # the decoded arrays are the same under the new path: re-key their cache instead of decoding again
        for split, new in _cache_files(dest).items():
            if split in caches and caches[split].is_file():
                os.replace(caches[split], new)
        return _report(ds, name, dest, root, status)


def _download(dest: Path, log: Callable[[str], None]) -> None:
    """Fetch cifar-10-python.tar.gz to ``dest`` and check its MD5, or raise one DataError line."""
    url = os.environ.get("FGGP_CIFAR10_URL", CIFAR10_URL)
    fix = "without a network, fetch cifar-10-python.tar.gz elsewhere and run `fggp-repro data --from FILE`"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as fh:
            log(f"downloading {url} ...")
            shutil.copyfileobj(resp, fh, 1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise DataError(f"cannot download CIFAR-10 from {url} ({reason}); {fix}") from None
    md5 = hashlib.md5()
    with open(dest, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            md5.update(block)
    if md5.hexdigest() != CIFAR10_MD5:
        raise DataError(f"the file from {url} is not CIFAR-10's cifar-10-python.tar.gz (MD5 {md5.hexdigest()}, "
                        f"expected {CIFAR10_MD5}); nothing was kept")


def download_cifar10(root: Path) -> SetupReport:
    """``train --download``: genuine CIFAR-10 into ``root`` (see :func:`setup`)."""
    return setup(None, root, download=True, log=lambda line: print(line, file=sys.stderr, flush=True))


# ---- on-device batches ---------------------------------------------------------------------------

class DeviceLoader:
    """Batches from a whole-dataset uint8 tensor on the device; normalisation fused into one affine."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool = False):
        self.x = x.to(device)
        self.y = y.to(device)
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std
        self._ar = torch.arange(32, device=device)

    def __len__(self) -> int:
        return len(self.y)

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def _normalize(self, xb: torch.Tensor) -> torch.Tensor:
        return xb.to(torch.float32, memory_format=self.memory_format).mul_(self._scale).sub_(self._shift)

    def augment(self, xb: torch.Tensor, off: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Crop 32x32 at ``off`` (0..8, per sample, in the zero-padded 40x40 image) then flip where ``flip``."""
        xp = F.pad(xb, (4, 4, 4, 4))
        b = torch.arange(xb.shape[0], device=xb.device)
        rows = off[:, 0:1] + self._ar  # [B, 32]
        cols = torch.where(flip[:, None], off[:, 1:2] + 31 - self._ar, off[:, 1:2] + self._ar)
        return xp[b[:, None, None, None], torch.arange(3, device=xb.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]

    def train_epoch(self, seed: int, epoch: int, batch_size: int,
                    augment: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches of epoch ``epoch`` (0-based); the last batch may be short (drop_last=False)."""
        n = len(self)
        order = torch.randperm(n, generator=generator(seed, "order", epoch)).to(self.device)
        if augment:
            ga = generator(seed, "augment", epoch)
            off = torch.randint(0, 9, (n, 2), generator=ga).to(self.device)
            flip = (torch.rand(n, generator=ga) < 0.5).to(self.device)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = self.x[idx]
            if augment:
                xb = self.augment(xb, off[i:i + batch_size], flip[i:i + batch_size])
            yield self._normalize(xb), self.y[idx]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self), batch_size):
            yield self._normalize(self.x[i:i + batch_size]), self.y[i:i + batch_size]
