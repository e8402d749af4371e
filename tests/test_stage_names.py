"""Stage names, locations, path confinement, URLs and list patterns: pure string rules."""

from __future__ import annotations

import os

import pytest

from shoal.errors import ConfigError, StagePathError
from shoal.stages import format_location, parse_location, parse_stage_name
from shoal.stages.paths import file_url_to_path, normalize_path, normalize_url
from shoal.stages.patterns import compile_pattern


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("@s", "S"),
        ("S", "S"),
        ("s", "S"),
        ("db.sch.s", "S"),
        ("@DB.SCH.S", "S"),
        ("sch.s", "S"),
        ("  @My_Stage$1 ", "MY_STAGE$1"),
        ("_private", "_PRIVATE"),
        ("a" * 255, "A" * 255),
    ],
)
def test_stage_name_resolution(written: str, canonical: str) -> None:
    assert parse_stage_name(written) == canonical


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("", "it is empty"),
        ("@", "it is empty"),
        ("1abc", "'1abc' is not an identifier"),
        ("my-stage", "'my-stage' is not an identifier"),
        ("my stage", "'my stage' is not an identifier"),
        ('"Quoted"', "is not an identifier"),
        ("@@s", "'@s' is not an identifier"),
        ("db..s", "empty part"),
        (".s", "empty part"),
        ("s.", "empty part"),
        ("a.b.c.d", "at most 3 dot-separated parts"),
        ("a" * 256, "256 characters long"),
        ("@s/dir", "is a location"),
    ],
)
def test_bad_stage_names_say_what_is_wrong(written: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"Invalid stage name|is a location") as caught:
        parse_stage_name(written)
    assert message in str(caught.value)
    if "location" not in message:
        assert "A stage name is an identifier" in str(caught.value)


def test_stage_name_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="must be a string, got int"):
        parse_stage_name(7)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("location", "name", "path"),
    [
        ("@s", "S", ""),
        ("@s/", "S", ""),
        ("s/a/b", "S", "a/b"),
        ("@DB.SCH.S/a/b", "S", "a/b"),
        ("@db.sch.s/path/", "S", "path"),
        ("@s/a//b/./c/", "S", "a/b/c"),
        ("Data/in/nested/b.csv", "DATA", "in/nested/b.csv"),
    ],
)
def test_location_resolution(location: str, name: str, path: str) -> None:
    assert parse_location(location) == (name, path)


@pytest.mark.parametrize(
    ("location", "error", "message"),
    [
        ("/etc/passwd", ConfigError, "names no stage"),
        ("@/x", ConfigError, "names no stage"),
        ("@bad-name/x", ConfigError, "'bad-name' is not an identifier"),
        ("@s/../x", StagePathError, "contains '..'"),
        ("@s/a\\b", StagePathError, "backslash"),
    ],
)
def test_bad_locations(location: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_location(location)


def test_format_location() -> None:
    assert format_location("S") == "@S"
    assert format_location("S", "a/b.txt") == "@S/a/b.txt"


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("", ""),
        (".", ""),
        ("a", "a"),
        ("a//b", "a/b"),
        ("./a/./b/", "a/b"),
        ("a/b.c/d..e", "a/b.c/d..e"),
        ("dir with space/é.txt", "dir with space/é.txt"),
    ],
)
def test_paths_are_normalized(path: str, normalized: str) -> None:
    assert normalize_path(path) == normalized


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../x", "contains '..'"),
        ("a/../../x", "contains '..'"),
        ("a/..", "contains '..'"),
        ("/etc/passwd", "is absolute"),
        ("C:\\x", "is absolute"),
        ("C:/x", "is absolute"),
        ("\\\\server\\share", "is absolute"),
        ("~", "starts with '~'"),
        ("~/x", "starts with '~'"),
        ("a\\b", "contains a backslash"),
        ("a\x00b", "NUL byte"),
        (".shoal-tmp-123", "reserved for in-flight writes"),
        ("a/.shoal-tmp-123/b", "reserved for in-flight writes"),
    ],
)
def test_paths_that_escape_or_are_malformed_are_refused(path: str, message: str) -> None:
    with pytest.raises(StagePathError, match="Stage path") as caught:
        normalize_path(path)
    assert message in str(caught.value)
    assert "Use a relative path" in str(caught.value) or "Rename" in str(caught.value)


def test_normalize_url_forms(tmp_path: os.PathLike[str]) -> None:
    assert normalize_url("/abs/p") == "file:///abs/p"
    assert normalize_url("/abs/p/../q/") == "file:///abs/q"
    assert normalize_url("file:///abs/p/") == "file:///abs/p"
    assert normalize_url("file:/abs/p") == "file:///abs/p"
    assert normalize_url("FILE://localhost/abs/p") == "file:///abs/p"
    assert normalize_url("~/data") == "file://" + os.path.expanduser("~/data")
    assert normalize_url("MEMORY://bucket/x/") == "memory://bucket/x"
    assert normalize_url("s3://Bucket/Prefix") == "s3://Bucket/Prefix"
    spaced = normalize_url("/tmp/a b/c%d")
    assert spaced == "file:///tmp/a%20b/c%25d"
    assert file_url_to_path(spaced) == "/tmp/a b/c%d"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("relative/dir", "is a relative path"),
        ("", "may not be empty"),
        ("file://host/x", "names the host 'host'"),
        ("file:relative", "must hold an absolute path"),
        ("s3://", "names no bucket"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_url(url)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*", "a/b/c.txt", True),
        ("*.parquet", "x.parquet", True),
        ("*.parquet", "a/b/x.parquet", True),
        ("*.parquet", "a/b/x.parquet.tmp", False),
        ("*.parquet", "a.parquet/x.csv", False),
        ("part-?.csv", "d/part-1.csv", True),
        ("part-?.csv", "d/part-10.csv", False),
        ("[!_]*.csv", "d/x.csv", True),
        ("[!_]*.csv", "d/_x.csv", False),
        ("a/**/x.csv", "a/x.csv", True),
        ("a/**/x.csv", "a/b/x.csv", True),
        ("a/**/x.csv", "a/b/c/d/x.csv", True),
        ("a/**/x.csv", "b/a/x.csv", False),
        ("a/*/x.csv", "a/b/x.csv", True),
        ("a/*/x.csv", "a/x.csv", False),
        ("a/*/x.csv", "a/b/c/x.csv", False),
        ("**/*.csv", "x.csv", True),
        ("**/*.csv", "q/r/x.csv", True),
        ("a/**", "a/b/c.bin", True),
        ("a/**", "b/c.bin", False),
        ("*/x.csv", "a/x.csv", True),
        ("*/x.csv", "x.csv", False),
        ("*.CSV", "x.csv", False),
    ],
)
def test_pattern_semantics(pattern: str, path: str, matches: bool) -> None:
    assert compile_pattern(pattern)(path) is matches


@pytest.mark.parametrize(
    ("pattern", "message"), [("", "non-empty"), ("/a/*", "starts with '/'"), ("a//b", "empty part")]
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_pattern(pattern)
