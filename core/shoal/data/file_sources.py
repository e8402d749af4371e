"""Files as a data source: parquet and CSV files on stages (``@stage/path``) or on local disk.

:func:`resolve_files` turns what a user passes to ``DataConnector.from_sources`` into a list of
files, and :class:`FileSource` streams them in that order, one file at a time:

* ``"@stage/dir/file.parquet"``: that file. ``"@stage/dir/"``: every data file under the folder
  (recursively) with a known extension; names starting with ``.`` or ``_`` are skipped, like
  Arrow and Spark do. ``"@stage/dir/*.parquet"``, ``"@stage/dir/**/part-*.csv"``: a glob, with the
  stage rules (``shoal.stages.patterns``): a pattern without ``/`` matches the base name at any
  depth below ``dir``, ``**`` spans folders.
* ``"/abs/file.csv"``, ``"relative/dir"``, ``"~/data/**/*.parquet"``, ``"file:///abs/x.parquet"``:
  local paths, folders and shell globs (``**`` recursive).
* other URLs (``s3://...``): make them a stage first (``shoal.create_stage("raw", "s3://...")``)
  and read ``"@raw/..."``; the stage's backend plugin does the I/O.

Parquet files are read row group by row group (``ParquetFile.iter_batches``), CSV files block by
block (``pyarrow.csv.open_csv``): the first batch comes without reading the rest. A local stage's
files are read by path; other stages' through ``Stage.open``. Files may differ in schema: the
source's schema unifies them (a column missing from one file is null there; ``int64`` and
``double`` become ``double``).

A :class:`FileSource` pickles as its stages (name and URL), file paths, format and options: a
worker opens the files itself.

Runs on the driver and on workers.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS
from shoal.data.batches import align_batch
from shoal.data.source import DataSource
from shoal.errors import ConfigError, StageFileNotFoundError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from shoal.stages import Stage

FileFormat = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")
EXTENSIONS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
}
_GLOB_CHARS = frozenset("*?[")
_IGNORED_PREFIXES = (".", "_")


def format_of(name: str) -> str | None:
    """The format a file name's extension says (``"parquet"``, ``"csv"``), or ``None``."""
    lower = name.lower()
    for extension in sorted(EXTENSIONS, key=len, reverse=True):
        if lower.endswith(extension):
            return EXTENSIONS[extension]
    return None


@dataclass(frozen=True)
class FileRef:
    """One file to read: ``path`` inside ``stage`` (or a local absolute path when ``stage`` is None)."""

    path: str
    format: str
    stage: Stage | None = None

    @property
    def location(self) -> str:
        """``@STAGE/path`` or the local path."""
        return self.stage.location(self.path) if self.stage is not None else self.path

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        """A local path (str) or an open binary file, for pyarrow readers."""
        if self.stage is None:
            yield self.path
            return
        self.stage.backend.check_confined(self.path)
        local = self.stage.backend.local_path(self.path)
        if local is not None:
            yield local
            return
        with self.stage.open(self.path, "rb") as handle:
            yield handle


# -- resolving what the user passed -----------------------------------------------------------


def _check_format(file_format: str | None) -> str | None:
    if file_format is None:
        return None
    normalized = str(file_format).strip().lower()
    if normalized not in FORMATS:
        raise ConfigError(f"file_format must be one of {', '.join(FORMATS)} or None, got {file_format!r}")
    return normalized


def _ignored(relative: str) -> bool:
    return any(part.startswith(_IGNORED_PREFIXES) for part in relative.split("/"))


def _pick_format(path: str, file_format: str | None, origin: str) -> str:
    if file_format is not None:
        return file_format
    found = format_of(path)
    if found is None:
        raise ConfigError(
            f"Cannot tell the format of {path!r} (from {origin!r}) by its extension; pass "
            f"file_format='parquet' or 'csv', or a pattern that selects data files only."
        )
    return found


def _from_folder(paths: Sequence[str], folder_rel: Any, file_format: str | None, origin: str) -> list[str]:
    """Data files of a folder listing: hidden/underscore names skipped, known extensions kept."""
    candidates = [p for p in paths if not _ignored(folder_rel(p))]
    wanted = {file_format} if file_format else set(FORMATS)
    kept = [p for p in candidates if format_of(p) in wanted]
    if not kept:
        shown = (
            ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "") if candidates else "nothing"
        )
        kind = f"{file_format} " if file_format else "parquet or csv "
        raise StageFileNotFoundError(
            f"{origin!r} is a folder with no {kind}files (it holds: {shown}). Pass a pattern such as "
            f"'{origin.rstrip('/')}/*.parquet' and file_format= for files without a known extension."
        )
    return kept


def _split_glob(parts: list[str]) -> tuple[list[str], list[str]]:
    """Split path parts at the first part with a glob character: (fixed folder, pattern parts)."""
    for index, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            return parts[:index], parts[index:]
    return parts, []


def _resolve_stage(location: str, file_format: str | None) -> list[FileRef]:
    from shoal.stages import resolve_location
    from shoal.stages.paths import relative_to

    name_part, _, rest = location.strip().partition("/")
    parts = [p for p in rest.split("/") if p]
    folder_parts, pattern_parts = _split_glob(parts)
    stage, inner = resolve_location("/".join([name_part, *folder_parts]))
    if pattern_parts:
        literal = "/".join(parts)
        if stage.list(literal) == [literal]:  # a file whose name holds '*', '?' or '[' (a partition value)
            return [FileRef(literal, _pick_format(literal, file_format, location), stage)]
        pattern = "/".join(pattern_parts)
        paths = stage.list(inner, pattern)
        if not paths:
            raise StageFileNotFoundError(
                f"No file matches {pattern!r} under {stage.location(inner)} (from {location!r})."
            )
        return [FileRef(p, _pick_format(p, file_format, location), stage) for p in paths]
    paths = stage.list(inner)
    if not paths:
        raise StageFileNotFoundError(f"No file or folder at {stage.location(inner)} (from {location!r}).")
    if paths == [inner]:
        return [FileRef(inner, _pick_format(inner, file_format, location), stage)]
    kept = _from_folder(paths, lambda p: relative_to(p, inner), file_format, location)
    return [FileRef(p, _pick_format(p, file_format, location), stage) for p in kept]


def resolve_stage_pattern(location: str, pattern: str, file_format: str | None = None) -> list[FileRef]:
    """Files under the stage folder ``location`` matching ``pattern`` exactly as ``Stage.list`` does."""
    from shoal.stages import resolve_location

    file_format = _check_format(file_format)
    stage, inner = resolve_location(location)
    paths = stage.list(inner, pattern)
    if not paths:
        raise StageFileNotFoundError(f"No file matches {pattern!r} under {stage.location(inner)}.")
    return [FileRef(p, _pick_format(p, file_format, location), stage) for p in paths]


def _walk(folder: str) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found.extend(os.path.join(dirpath, name) for name in sorted(filenames))
    return found


def _resolve_local(source: str, file_format: str | None) -> list[FileRef]:
    if source.lower().startswith("file:"):
        from shoal.stages.paths import file_url_to_path

        source = file_url_to_path(source)
    path = os.path.abspath(os.path.expanduser(source))
    if _GLOB_CHARS & set(source) and not os.path.exists(path):
        matches = sorted(glob.glob(path, recursive=True))
        files: list[str] = []
        for match in matches:
            files.extend(_walk(match) if os.path.isdir(match) else [match])
        if not files:
            raise FileNotFoundError(f"No local file matches {source!r}.")
        return [FileRef(f, _pick_format(f, file_format, source)) for f in files]
    if os.path.isfile(path):
        return [FileRef(path, _pick_format(path, file_format, source))]
    if os.path.isdir(path):
        kept = _from_folder(
            _walk(path), lambda p: os.path.relpath(p, path).replace(os.sep, "/"), file_format, source
        )
        return [FileRef(p, _pick_format(p, file_format, source)) for p in kept]
    raise FileNotFoundError(f"No local file or folder {source!r} (looked at {path}).")


def resolve_files(sources: Iterable[str | os.PathLike[str]], file_format: str | None = None) -> list[FileRef]:
    """The files named by ``sources`` (stage locations, local paths, globs), in order, without repeats."""
    file_format = _check_format(file_format)
    refs: list[FileRef] = []
    seen: set[tuple[str, str]] = set()
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            raise ConfigError(
                f"A file source is a stage location ('@stage/path'), a local path or a glob; got "
                f"{type(source).__name__} {source!r}."
            )
        text = os.fspath(source)
        if text.strip().startswith("@"):
            found = _resolve_stage(text, file_format)
        elif "://" in text and not text.lower().startswith("file:"):
            raise ConfigError(
                f"{text!r}: read remote files through a stage: shoal.create_stage('raw', "
                f"{text.rsplit('/', 1)[0] + '/'!r}) then DataConnector.from_sources(['@raw/...'])."
            )
        else:
            found = _resolve_local(text, file_format)
        for ref in found:
            key = (ref.stage.url if ref.stage is not None else "", ref.path)
            if key not in seen:
                seen.add(key)
                refs.append(ref)
    return refs


# -- reading ----------------------------------------------------------------------------------


def _csv_options(options: dict[str, Any], columns: Sequence[str] | None) -> dict[str, Any]:
    """``pyarrow.csv`` read/parse/convert options from one flat dict of their field names."""
    import pyarrow.csv as pcsv

    groups: dict[str, dict[str, Any]] = {"read_options": {}, "parse_options": {}, "convert_options": {}}
    classes = {
        "read_options": pcsv.ReadOptions,
        "parse_options": pcsv.ParseOptions,
        "convert_options": pcsv.ConvertOptions,
    }
    for key, value in options.items():
        owner = next((group for group, cls in classes.items() if hasattr(cls(), key)), None)
        if owner is None:
            raise ConfigError(
                f"Unknown CSV option {key!r}; use a field of pyarrow.csv.ReadOptions, ParseOptions or "
                f"ConvertOptions (e.g. delimiter=';', column_types={{'id': 'int64'}}, skip_rows=1)."
            )
        groups[owner][key] = value
    if columns is not None:
        groups["convert_options"]["include_columns"] = list(columns)
    return {group: classes[group](**values) for group, values in groups.items()}


@contextlib.contextmanager
def _csv_stream(source: Any, name: str) -> Iterator[Any]:
    import pyarrow as pa

    compression = "gzip" if name.lower().endswith(".gz") else "bz2" if name.lower().endswith(".bz2") else None
    if isinstance(source, str):
        with pa.input_stream(source, compression=compression) as stream:
            yield stream
    elif compression:
        with pa.CompressedInputStream(pa.PythonFile(source, mode="r"), compression) as stream:
            yield stream
    else:
        yield source


class FileSource(DataSource):
    """Parquet or CSV files, read one after another, streaming."""

    kind = "files"

    def __init__(
        self,
        files: Sequence[FileRef],
        *,
        origins: Sequence[str] = (),
        columns: Sequence[str] | None = None,
        csv_options: dict[str, Any] | None = None,
    ) -> None:
        if not files:
            raise ConfigError("A file source needs at least one file.")
        self.files = list(files)
        self.origins = list(origins)
        self.columns = list(columns) if columns is not None else None
        self.csv_options = dict(csv_options or {})
        if self.csv_options:
            _csv_options(self.csv_options, self.columns)  # unknown option names fail here, on the driver
        self._schema: pa.Schema | None = None
        self._num_rows: int | None = None

    # -- per file -------------------------------------------------------------------------

    def _file_schema(self, ref: FileRef) -> pa.Schema:
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        with ref.open() as source:
            if ref.format == "parquet":
                schema = pq.read_schema(source)
                if self.columns is not None:
                    missing = [c for c in self.columns if schema.get_field_index(c) < 0]
                    if missing:
                        raise ConfigError(
                            f"{ref.location} has no column(s) {missing}; it has {schema.names}."
                        )
                    schema = pa.schema([schema.field(c) for c in self.columns], metadata=schema.metadata)
                return schema
            with _csv_stream(source, ref.path) as stream:
                reader = pcsv.open_csv(stream, **_csv_options(self.csv_options, self.columns))
                try:
                    return reader.schema
                finally:
                    reader.close()

    def _file_batches(
        self, ref: FileRef, batch_size: int, row_groups: Sequence[int] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The file's batches; for parquet, only those of ``row_groups`` when given."""
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        with ref.open() as source:
            if ref.format == "parquet":
                with pq.ParquetFile(source, pre_buffer=False) as parquet:
                    yield from parquet.iter_batches(
                        batch_size=batch_size, columns=self.columns, row_groups=row_groups
                    )
                return
            options = _csv_options(self.csv_options, self.columns)
            options["read_options"].block_size = max(options["read_options"].block_size, 1 << 16)
            with _csv_stream(source, ref.path) as stream:
                reader = pcsv.open_csv(stream, **options)
                try:
                    yield from reader
                finally:
                    reader.close()

    # -- DataSource -----------------------------------------------------------------------

    def schema(self) -> pa.Schema:
        if self._schema is None:
            import pyarrow as pa

            schemas = [self._file_schema(ref) for ref in self.files]
            try:
                unified = pa.unify_schemas(schemas, promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise ValueError(
                    f"The files of {self.describe()} have schemas that cannot be combined: {exc}"
                ) from exc
            self._schema = unified.with_metadata(schemas[0].metadata)
        return self._schema

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        for ref in self.files:
            for batch in self._file_batches(ref, batch_size or DEFAULT_BATCH_ROWS):
                if batch.num_rows:
                    yield align_batch(batch, schema, ref.location)

    def num_rows(self) -> int | None:
        if self._num_rows is None and all(ref.format == "parquet" for ref in self.files):
            import pyarrow.parquet as pq

            total = 0
            for ref in self.files:
                with ref.open() as source:
                    total += pq.read_metadata(source).num_rows
            self._num_rows = total
        return self._num_rows

    def shuffled(self, rng: np.random.Generator) -> FileSource:
        order = rng.permutation(len(self.files))
        copy = FileSource(
            [self.files[i] for i in order],
            origins=self.origins,
            columns=self.columns,
            csv_options=self.csv_options,
        )
        copy._schema, copy._num_rows = self._schema, self._num_rows
        return copy

    def locations(self) -> list[str]:
        return [ref.location for ref in self.files]

    def local_paths(self) -> list[str] | None:
        """Every file's local path when all of them are on this machine, else ``None``."""
        paths = []
        for ref in self.files:
            if ref.stage is None:
                paths.append(ref.path)
                continue
            local = ref.stage.backend.local_path(ref.path)
            if local is None:
                return None
            paths.append(local)
        return paths

    def describe(self) -> str:
        formats = sorted({ref.format for ref in self.files})
        count = len(self.files)
        where = (
            ", ".join(self.origins)
            if self.origins
            else self.files[0].location + (", ..." if count > 1 else "")
        )
        return f"{count} {'/'.join(formats)} file{'s' if count != 1 else ''} from {where}"
