"""constraints.txt pins the whole dependency closure of the package and its tests, indirect dependencies included."""

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: '{line}' is not NAME==VERSION"
            pins[_norm(name)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(root: str, extras: tuple = ()) -> set[str]:
    """Every distribution that installing ``root[extras]`` brings in on this machine (markers evaluated here)."""
    seen, todo = set(), [(root, extras)]
    while todo:
        name, extra = todo.pop()
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            envs = [{"extra": e} for e in extra] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = _norm(req.name)
            if key not in seen:
                seen.add(key)
                todo.append((req.name, tuple(req.extras)))
    return seen


def test_every_dependency_is_pinned_and_installed_at_its_pin():
    pins = _pins()
    need = _closure("fggp-repro", ("test",))
    assert {"torch", "fonttools", "matplotlib", "numpy", "pytest"} <= need  # the walk reaches indirect ones
    assert sorted(need - set(pins)) == []  # nothing left to the resolver
    wrong = {n: (metadata.version(n), pins[n]) for n in need if metadata.version(n) != pins[n]}
    assert wrong == {}, "installed versions differ from constraints.txt: reinstall with pip install -c constraints.txt"
