"""Where a run's code came from: a git checkout, a copy of the source tree, or an installed package, said in the
record rather than guessed."""

import hashlib
import subprocess

import pytest

from fggp_repro import provenance as P

PYPROJECT = '[project]\nname = "fggp-repro"\n'


def _tree(root, pyproject=PYPROJECT):
    """A source tree as the package would sit in it: root/fggp_repro/ (this module's folder) and root/pyproject.toml."""
    pkg = root / "fggp_repro"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_bytes(b"A = 1\n")
    (pkg / "sub" / "b.toml").write_bytes(b"b = 2\n")
    (pkg / "c.json").write_bytes(b"{}")  # not code: not hashed
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    return pkg


@pytest.fixture
def nowhere(monkeypatch):
    monkeypatch.delenv("FGGP_SOURCE_COMMIT", raising=False)


def test_an_installed_package_says_so_instead_of_hashing_or_asking_git(tmp_path, monkeypatch, nowhere):
    # site-packages inside a git repository of someone else's: git must not be asked about that repository
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setattr(P, "PACKAGE_DIR", _tree(tmp_path / "site-packages", pyproject=None))
    assert P.source_tree() is None and P.source_kind() == "installed"
    assert P.source_sha256() is None and P.git_state() == ("unknown", None)
    monkeypatch.setattr(P, "PACKAGE_DIR", _tree(tmp_path / "other", pyproject='[project]\nname = "other"\n'))
    assert P.source_kind() == "installed"


def test_a_copy_of_the_source_tree_is_hashed_and_has_no_git_state(tmp_path, monkeypatch, nowhere):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # an enclosing repository: not the tree's own
    root = tmp_path / "copy"
    monkeypatch.setattr(P, "PACKAGE_DIR", _tree(root))
    (root / "constraints.txt").write_bytes(b"torch==2\n")
    assert P.source_tree() == root and P.source_kind() == "copy" and P.git_state() == ("unknown", None)
    want = hashlib.sha256(b"fggp_repro/a.py|A = 1\nfggp_repro/sub/b.toml|b = 2\n"
                          + b"pyproject.toml|" + PYPROJECT.encode() + b"constraints.txt|torch==2\n").hexdigest()
    assert P.source_sha256() == want
    monkeypatch.setenv("FGGP_SOURCE_COMMIT", "c0ffee")  # the device scripts declare the commit of their copy
    assert P.git_state() == ("c0ffee", None)


def test_a_checkout_names_its_commit_and_whether_the_run_code_differs(tmp_path, monkeypatch, nowhere):
    root = tmp_path / "repo"
    monkeypatch.setattr(P, "PACKAGE_DIR", _tree(root))
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert P.source_kind() == "checkout" and P.git_state() == (head, False)
    (root / "notes.md").write_text("not run code")
    assert P.git_state() == (head, False)
    (root / "fggp_repro" / "a.py").write_bytes(b"A = 2\n")
    assert P.git_state() == (head, True)
