"""Partition keys as folder names (shoal.dpf.folders): safe, distinct, reversible, readable."""

from __future__ import annotations

import pytest

from shoal.dpf.folders import LONGEST_PART, folder_of, folders_of, key_of
from shoal.dpf.specs import PartitionInput, TaskSpec

ODD_KEYS = [
    "..",
    ".",
    "",
    "_shoal",
    "_shoal_x",
    "o'brien",
    "a/b",
    "a%2Fb",
    "a%252Fb",
    "%41",
    "A",
    "~home",
    ".hidden",
    ".shoal-tmp-x",
    "ü ñ",
    "line\nbreak",
    "tab\there",
    "back\\slash",
    "a//b",
    "/lead",
    "trail/",
    "%",
    "%%",
    "k" * 300,
    "ü" * 200,
]


@pytest.mark.parametrize("key", ["S01", "store_7", "2024-01-31", "a.b", "x=1,y@z+w", "data/2024/01.csv"])
def test_safe_keys_stay_as_they_are(key: str) -> None:
    assert folder_of(key) == key
    assert key_of(key) == key


@pytest.mark.parametrize(
    ("key", "folder"),
    [
        ("..", "%2E."),
        (".", "%2E"),
        ("", "%"),
        ("_shoal", "%5Fshoal"),
        ("_shoal_x", "%5Fshoal_x"),
        ("x/_shoal", "x/_shoal"),
        ("o'brien", "o%27brien"),
        ("a%2Fb", "a%252Fb"),
        ("~home", "%7Ehome"),
        ("line\nbreak", "line%0Abreak"),
        ("a//b", "a/%/b"),
    ],
)
def test_odd_keys_are_encoded(key: str, folder: str) -> None:
    assert folder_of(key) == folder
    assert key_of(folder) == key


@pytest.mark.parametrize("key", ODD_KEYS)
def test_no_folder_leaves_its_run_or_hides_or_is_too_long(key: str) -> None:
    folder = folder_of(key)
    parts = folder.split("/")
    assert parts[0] != "_shoal"
    for part in parts:
        assert part not in ("", ".", "..")
        assert not part.startswith((".", "~"))
        assert "\\" not in part
        assert all(32 < ord(c) < 127 for c in part), f"{part!r} is not printable ASCII"
        assert len(part.encode()) <= LONGEST_PART


def test_every_key_has_a_folder_of_its_own() -> None:
    folders = folders_of(ODD_KEYS)
    assert len(set(folders.values())) == len(ODD_KEYS)
    assert len({f.casefold() for f in folders.values()}) == len(ODD_KEYS)


@pytest.mark.parametrize("key", [k for k in ODD_KEYS if len(k) < 100])
def test_short_keys_read_back_from_their_folder(key: str) -> None:
    assert key_of(folder_of(key)) == key


def test_long_keys_get_a_digest_and_differ_in_their_tail() -> None:
    first, second = "k" * 300, "k" * 299 + "j"
    assert folder_of(first) != folder_of(second)
    assert "%%" in folder_of(first)
    assert folder_of(first).startswith("k" * 100)
    assert key_of(folder_of(first)) is None, "a digest is not reversible: the run's partitions are"
    # a %XX escape is never cut in two
    assert "%%" in folder_of("ü" * 200)
    assert folder_of("ü" * 200).split("%%")[0].endswith("%BC")


def test_keys_that_differ_only_in_case_get_folders_of_their_own() -> None:
    folders = folders_of(["S1", "s1", "a/X", "A/x", "other"])
    assert folders["S1"] == "S1", "the first key (sorted) stays readable"
    assert folders["s1"].startswith("s1%%")
    assert folders["other"] == "other"
    assert len({f.casefold() for f in folders.values()}) == 5
    assert folders_of(["s1", "S1"]) == folders_of(["S1", "s1"]), "the same for any order"


def test_specs_carry_the_folder_and_older_records_get_their_keys_own() -> None:
    old = PartitionInput.from_dict({"partition_id": "..", "index": 0, "files": []})
    assert old.folder == "%2E."
    kept = PartitionInput.from_dict({"partition_id": "s1", "index": 0, "folder": "s1%%abc"})
    assert kept.folder == "s1%%abc"
    assert TaskSpec.from_json(TaskSpec("s1", 0, 1, folder="s1%%abc").to_json()).folder == "s1%%abc"
