import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fggp_repro import data as D
from fggp_repro.spec import config as C


def _loader(x):
    return D.DeviceLoader(x, torch.zeros(len(x), dtype=torch.int64), torch.device("cpu"))


def test_augment_crop_and_flip_by_hand():
    img = torch.arange(3 * 32 * 32, dtype=torch.int64).reshape(1, 3, 32, 32) % 251 + 1  # no zeros inside
    img = img.to(torch.uint8)
    ld = _loader(img)
    same = ld.augment(img, torch.tensor([[4, 4]]), torch.tensor([False]))
    assert torch.equal(same, img)  # offset 4 in the 40x40 padded image is the original
    shifted = ld.augment(img, torch.tensor([[0, 8]]), torch.tensor([False]))
    # top 4 rows come from the zero padding; columns start 4 to the right of the original's first
    assert torch.equal(shifted[0, :, :4, :], torch.zeros(3, 4, 32, dtype=torch.uint8))
    assert torch.equal(shifted[0, :, 4:, :28], img[0, :, :28, 4:])
    assert torch.equal(shifted[0, :, :, 28:], torch.zeros(3, 32, 4, dtype=torch.uint8))
    flipped = ld.augment(img, torch.tensor([[4, 4]]), torch.tensor([True]))
    assert torch.equal(flipped, img.flip(-1))


def test_normalisation_uses_protocol_constants():
    x = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    xb, _ = next(_loader(x).eval_batches(10))
    expected = [(1 - m) / s for m, s in zip((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))]
    assert torch.allclose(xb[0, :, 0, 0], torch.tensor(expected), atol=1e-5)


def test_epoch_stream_depends_on_seed_and_epoch_only():
    ds = D.synthetic(200, 20)
    ld = D.DeviceLoader(ds.train_x, ds.train_y, torch.device("cpu"))
    a = torch.cat([y for _, y in ld.train_epoch(seed=1, epoch=0, batch_size=64, augment=True)])
    b = torch.cat([y for _, y in ld.train_epoch(seed=1, epoch=0, batch_size=50, augment=True)])
    c = torch.cat([y for _, y in ld.train_epoch(seed=1, epoch=1, batch_size=64, augment=True)])
    d = torch.cat([y for _, y in ld.train_epoch(seed=2, epoch=0, batch_size=64, augment=True)])
    assert torch.equal(a, b)  # batch boundaries do not change the order
    assert not torch.equal(a, c) and not torch.equal(a, d)
    xa = torch.cat([x for x, _ in ld.train_epoch(1, 0, 64, True)])
    xb = torch.cat([x for x, _ in ld.train_epoch(1, 0, 50, True)])
    assert torch.equal(xa, xb)  # nor the augmentation
    sizes = [len(y) for _, y in ld.train_epoch(1, 0, 64, False)]
    assert sizes == [64, 64, 64, 8]  # drop_last=False, as the authors' DataLoader


def test_synthetic_is_fixed_and_balanced():
    a, b = D.synthetic(100, 50), D.synthetic(100, 50)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape == (100, 3, 32, 32)
    assert torch.bincount(a.train_y).tolist() == [10] * 10


def test_balanced_subset_is_class_balanced_and_seeded():
    y = torch.arange(1000) % 10
    s1 = D.balanced_subset(y, 100, seed=0)
    assert torch.bincount(y[s1]).tolist() == [10] * 10
    assert torch.equal(s1, D.balanced_subset(y, 100, seed=0))
    assert not torch.equal(s1, D.balanced_subset(y, 100, seed=1))
    assert torch.equal(s1, torch.sort(s1).values)


def _write_image_folder(root, per_class=2, base=0):
    from torchvision.io import write_png

    imgs = {}
    for split in ("train", "test"):
        for i, c in enumerate(D.CLASSES):
            (root / split / c).mkdir(parents=True)
            for k in range(per_class):
                img = torch.full((3, 32, 32), base + 10 * i + k, dtype=torch.uint8)
                write_png(img, str(root / split / c / f"{k:04d}.png"))
                imgs[(split, c, k)] = img
    return imgs


def test_image_folder_labels_follow_sorted_class_folders(tmp_path):
    _write_image_folder(tmp_path / "cifar10-jpeg")
    cfg = C.load(overrides={"data": {"dataset": "cifar10-jpeg", "data_root": str(tmp_path), "check_copy": False}}).data
    ds = D.load(cfg)
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_y.tolist() == [i for i in range(10) for _ in range(2)]
    assert ds.train_x[2 * 7 + 1, 0, 0, 0].item() == 71  # horse (label 7), second image
    ds2 = D.load(cfg)  # second load comes from the decoded cache
    assert torch.equal(ds.train_x, ds2.train_x)


def test_missing_data_names_the_set_up_command(tmp_path):
    cfg = C.load(overrides={"data": {"dataset": "cifar10", "data_root": str(tmp_path), "check_copy": False}}).data
    with pytest.raises(D.DataError, match=r"fggp-repro data --from PATH.*fggp-repro data --download.*--data-root"):
        D.load(cfg)
    cfg = C.load(overrides={"data": {"dataset": "cifar10-jpeg", "data_root": str(tmp_path), "check_copy": False}}).data
    with pytest.raises(D.DataError, match=r"not found under .*: run `fggp-repro data --from PATH` \(PATH: "
                                          r"cifar10-jpeg.tar.gz or its unpacked folder\), or pass --data-root"):
        D.load(cfg)


def test_corrupt_image_is_one_clear_error(tmp_path):
    _write_image_folder(tmp_path)
    (tmp_path / "train" / "cat" / "0000.png").write_bytes(b"not an image")
    cfg = C.load(overrides={"data": {"dataset": "cifar10-jpeg", "data_root": str(tmp_path), "check_copy": False}}).data
    with pytest.raises(D.DataError, match="corrupt image .*0000.png"):
        D.load(cfg)


def _write_cifar_batches(base, n_per_batch=20):
    base.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = np.arange(n_per_batch * 3072, dtype=np.int64).reshape(n_per_batch, 3072) % 256
        with open(base / name, "wb") as fh:
            pickle.dump({"data": rows.astype(np.uint8), "labels": [i % 10 for i in range(n_per_batch)]}, fh)


def test_genuine_cifar10_pickles(tmp_path):
    _write_cifar_batches(tmp_path / "cifar-10-batches-py")
    cfg = C.load(overrides={"data": {"dataset": "cifar10", "data_root": str(tmp_path), "check_copy": False}}).data
    ds = D.load(cfg)
    assert ds.train_x.shape == (100, 3, 32, 32) and ds.test_x.shape == (20, 3, 32, 32)
    # CIFAR rows are 1024 red, then green, then blue values, row-major
    assert ds.train_x[0, 1, 0, 0].item() == 1024 % 256 and ds.train_x[0, 0, 0, 5].item() == 5
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x80garbage")
    with pytest.raises(D.DataError, match="corrupt CIFAR-10 file"):
        D.load(cfg)


@pytest.mark.realdata
def test_real_jpeg_copy_loads(jpeg_root):
    cfg = C.load(overrides={"data": {"dataset": "cifar10-jpeg", "data_root": str(jpeg_root)}}).data
    ds = D.load(cfg)
    assert ds.train_x.shape == (50000, 3, 32, 32) and ds.test_x.shape == (10000, 3, 32, 32)
    assert torch.bincount(ds.train_y).tolist() == [5000] * 10
    means = (ds.train_x.double().mean(dim=(0, 2, 3)) / 255).tolist()
    # the data README: train-set channel means 0.4913, 0.4821, 0.4465
    assert [round(m, 4) for m in means] == pytest.approx([0.4913, 0.4821, 0.4465], abs=1e-4)


# ---- `fggp-repro data`: set-up and check ------------------------------------------------------------

def _expected_fingerprint(per_class, base=0):
    """The fingerprint of _write_image_folder's images, from the pixel values the test wrote (not from the loader)."""
    import hashlib

    h = hashlib.sha256()
    xs = np.stack([np.full((3, 32, 32), base + 10 * i + k, np.uint8) for i in range(10) for k in range(per_class)])
    ys = np.repeat(np.arange(10, dtype=np.int64), per_class)
    for name, a in (("train_x", xs), ("train_y", ys), ("test_x", xs), ("test_y", ys)):
        h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _tarball(src, dest):
    import tarfile

    with tarfile.open(dest, "w:gz") as tf:
        tf.add(src, arcname="cifar10-jpeg")
    return dest


def test_setup_unpacks_checks_and_fingerprints_a_jpeg_tarball(tmp_path):
    _write_image_folder(tmp_path / "src")
    tarball = _tarball(tmp_path / "src", tmp_path / "cifar10-jpeg.tar.gz")
    root = tmp_path / "data-root"
    cached = set((D.cache_dir() / "decoded").glob("*.npz"))
    rep = D.setup(tarball, root)
    assert (rep.name, rep.status, rep.path) == ("cifar10-jpeg", "installed", root / "cifar10-jpeg")
    assert rep.train_counts == [2] * 10 and rep.test_counts == [2] * 10
    assert rep.fingerprint == _expected_fingerprint(2)
    assert sorted(p.name for p in root.iterdir()) == ["cifar10-jpeg"]  # no staging folder left
    assert ("  note: not the complete CIFAR-10 (5000 training and 1000 test images in each of 10 classes): train, grid "
            "and verify refuse it unless --no-check-copy") in rep.lines()
    # the installed copy loads from the data root, with the same fingerprint, from the re-keyed decoded cache
    cfg = C.load(overrides={"data": {"dataset": "cifar10-jpeg", "data_root": str(root), "check_copy": False}}).data
    assert D.load(cfg).fingerprint == rep.fingerprint
    assert len(set((D.cache_dir() / "decoded").glob("*.npz")) - cached) == 2  # train and test of the installed copy
    # the same data again (now as a folder): left alone
    assert D.setup(tmp_path / "src", root).status == "already set up (the same fingerprint)"
    # different images: refused unless --force
    _write_image_folder(tmp_path / "other", base=100)
    with pytest.raises(D.DataError, match=r"already holds a different copy \(fingerprint [0-9a-f]{16}\) of "
                                          r"cifar10-jpeg: pass --force to replace it"):
        D.setup(tmp_path / "other", root)
    replaced = D.setup(tmp_path / "other", root, force=True)
    assert replaced.status == "replaced" and replaced.fingerprint == _expected_fingerprint(2, base=100)
    assert sorted(p.name for p in root.iterdir()) == ["cifar10-jpeg"]
    # checking the copy in place
    assert D.setup(root / "cifar10-jpeg", root).status == "checked in place"


def test_setup_of_genuine_cifar10_batches(tmp_path):
    _write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py")
    rep = D.setup(tmp_path / "src", tmp_path / "root")
    assert (rep.name, rep.path) == ("cifar10", tmp_path / "root" / "cifar-10-batches-py")
    assert rep.train_counts == [10] * 10 and rep.test_counts == [2] * 10  # 5 x 20 and 20 images, labels i % 10
    cfg = C.load(overrides={"data": {"dataset": "cifar10", "data_root": str(tmp_path / "root"),
                                     "check_copy": False}}).data
    assert D.load(cfg).fingerprint == rep.fingerprint


def test_failed_setup_leaves_nothing_behind(tmp_path):
    _write_image_folder(tmp_path / "src")
    (tmp_path / "src" / "test" / "dog" / "0001.png").write_bytes(b"broken")
    root = tmp_path / "new" / "data-root"
    cached = set((D.cache_dir() / "decoded").glob("*.npz"))
    with pytest.raises(D.DataError, match="corrupt image .*0001.png"):
        D.setup(_tarball(tmp_path / "src", tmp_path / "c.tar.gz"), root)
    assert not (tmp_path / "new").exists()
    assert set((D.cache_dir() / "decoded").glob("*.npz")) == cached  # the train split's decoded cache is gone too
    (tmp_path / "junk.txt").write_text("junk")
    with pytest.raises(D.DataError, match="neither a folder nor a tar archive"):
        D.setup(tmp_path / "junk.txt", root)
    (tmp_path / "cut.tar.gz").write_bytes(_tarball(tmp_path / "src", tmp_path / "whole.tar.gz").read_bytes()[:300])
    with pytest.raises(D.DataError, match=r"cut.tar.gz .*: a truncated or corrupt copy\? Fetch it again"):
        D.setup(tmp_path / "cut.tar.gz", root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DataError, match="holds neither a cifar10-jpeg tree"):
        D.setup(tmp_path / "empty", root)
    assert not (tmp_path / "new").exists()


def test_a_tarball_with_a_bad_copy_is_named_in_one_line(tmp_path, capsys):
    from fggp_repro import cli

    _write_image_folder(tmp_path / "src")
    for split in ("train", "test"):  # one class folder short
        for p in (tmp_path / "src" / split / D.CLASSES[-1]).iterdir():
            p.unlink()
        (tmp_path / "src" / split / D.CLASSES[-1]).rmdir()
    tarball = _tarball(tmp_path / "src", tmp_path / "nine.tar.gz")
    root = tmp_path / "root"
    assert cli.main(["data", "--from", str(tarball), "--data-root", str(root)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"fggp-repro data: error: {tarball} is not a usable copy of cifar10-jpeg: cifar10-jpeg/train "
                       "should hold 10 class folders, found 9; nothing was kept")
    assert not root.exists()
    _write_cifar_batches(tmp_path / "batches" / "cifar-10-batches-py")
    (tmp_path / "batches" / "cifar-10-batches-py" / "test_batch").unlink()
    assert cli.main(["data", "--from", str(tmp_path / "batches"), "--data-root", str(root)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"fggp-repro data: error: {tmp_path / 'batches'} is not a usable copy of cifar10: CIFAR-10 "
                       "file test_batch not found under cifar-10-batches-py; nothing was kept")
    assert not root.exists()


def test_data_command_prints_counts_and_fingerprint(tmp_path):
    from fggp_repro import cli

    _write_image_folder(tmp_path / "src")
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["data", "--from", str(tmp_path / "src"), "--data-root", str(tmp_path / "root")])
    assert code == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"cifar10-jpeg: installed: {tmp_path / 'root' / 'cifar10-jpeg'}"
    assert lines[1] == "  train: 20 images, per class 2 2 2 2 2 2 2 2 2 2"
    assert lines[3] == f"  fingerprint (sha256 of the decoded arrays): {_expected_fingerprint(2)}"
    assert lines[-1] == (f"  train, grid and verify read it with --data-root {tmp_path / 'root'} "
                         f"(or FGGP_DATA={tmp_path / 'root'})")
    assert err.getvalue().startswith(f"copying {tmp_path / 'src'} into {tmp_path / 'root'} and checking it")


# ---- the data guard: only the complete, known copy trains under the committed run ids -------------------

def _copy(train_per_class, test_per_class=1000, fingerprint="0" * 64):
    """A Dataset with these images per class (blank pixels: only labels and the fingerprint matter here)."""
    ty = torch.arange(10).repeat_interleave(torch.tensor(train_per_class))
    vy = torch.arange(10).repeat_interleave(test_per_class)
    return D.Dataset("cifar10-jpeg", torch.zeros(len(ty), 1, 1, 1, dtype=torch.uint8), ty,
                     torch.zeros(len(vy), 1, 1, 1, dtype=torch.uint8), vy, fingerprint=fingerprint)


def test_the_guard_refuses_a_copy_with_one_image_missing():
    known = D.KNOWN_FINGERPRINTS["cifar10-jpeg"][0]
    D.check_copy(_copy([5000] * 10, fingerprint=known), "cifar10-jpeg", Path("/data"))  # the complete copy passes
    missing = _copy([5000, 5000, 5000, 4999] + [5000] * 6, fingerprint=known)
    with pytest.raises(D.DataError) as e:
        D.check_copy(missing, "cifar10-jpeg", Path("/data"))
    assert str(e.value) == (
        "the cifar10-jpeg data under /data is not the complete dataset: 49,999 train images, not 50,000 (5,000 a "
        "class; here cat 4,999): set up the complete copy with `fggp-repro data --from PATH --force`, or pass "
        "--no-check-copy to train on this one under a run id of its own")
    with pytest.raises(D.DataError, match=r"1,000 a class; here airplane 999, automobile 999, bird 999 and 7 more"):
        D.check_copy(_copy([5000] * 10, test_per_class=999, fingerprint=known), "cifar10-jpeg", Path("/data"))


def test_the_guard_refuses_complete_counts_with_other_pixels():
    with pytest.raises(D.DataError, match=r"has fingerprint 0000000000000000…, not the known copy's 8cc0411c6016389f…"):
        D.check_copy(_copy([5000] * 10), "cifar10-jpeg", Path("/data"))
    D.check_copy(_copy([5000] * 10), "cifar10", Path("/data"))  # no fingerprint known for genuine CIFAR-10: counts only


def test_train_refuses_an_incomplete_copy_in_one_line_and_a_run_may_opt_out_under_its_own_id(tmp_path):
    _write_image_folder(tmp_path / "data" / "cifar10-jpeg")
    args = [sys.executable, "-m", "fggp_repro", "train", "--dataset", "cifar10-jpeg", "--data-root",
            str(tmp_path / "data"), "--arch", "vgg19", "--width", "0.0625", "--epochs", "1", "--milestones", "",
            "--batch-size", "10", "--out", str(tmp_path / "out"), "--quiet", "--threads", "1"]
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("fggp-repro train: error: the cifar10-jpeg data under ")
    assert "is not the complete dataset: 20 train images, not 50,000" in res.stderr
    assert not (tmp_path / "out" / "raw").exists()
    on = C.load(overrides={"data": {"dataset": "cifar10-jpeg"}})
    off = C.load(overrides={"data": {"dataset": "cifar10-jpeg", "check_copy": False}})
    assert C.run_id(on) != C.run_id(off)  # a run on another copy never takes a committed run's id
