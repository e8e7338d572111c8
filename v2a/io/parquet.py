"""Parquet files and folders of shards: schema-checked writes, projected and pushed-down reads.

Every table is one file or a folder of part files. Reads go file by file (`iter_tables`), so a
stage holds one shard at a time; `ids=` prunes whole files by the `clip_id` range in their footers
(cached per process, keyed by each file's size and change token, so a listing is the only cost of
a repeated read) and row groups by pyarrow's own statistics, so a task that needs 64 clips of a
200k-clip table decodes only the row groups that hold them.
"""

from __future__ import annotations

import bisect
import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage_schemas import conform, validate
from storage_schemas.validate import added_columns
from v2a.core import storage
from v2a.core.fingerprint import change_token, short_digest

# Rows per row group: small enough that a read of a few clips decodes little, large enough that the
# footer stays small. An embeddings row is ~22 KB (10 frames x 512 float32 + the audio vector).
ROW_GROUP_ROWS = 64

log = logging.getLogger(__name__)

# How often a read starts again on a fresh listing when a part it listed was merged away meanwhile.
_VANISHED_RETRIES = 5


def _string_columns(schema: pa.Schema) -> list[str]:
    # Dictionary encoding pays off on repeated strings (model ids, splits) and costs space and time on
    # float vectors, which never repeat.
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def write_table(data, uri: str, schema: pa.Schema, name: str = "table", row_group_rows: int = ROW_GROUP_ROWS,
                sort_by: str | None = None) -> pa.Table:
    """Validate `data` against `schema` and write it atomically (readers never see half a file).

    `sort_by` orders the rows by that column first, which makes the footer statistics of each row
    group a tight range (what `ids=` reads prune on)."""
    table = conform(data, schema, name)
    if sort_by and table.num_rows:
        table = table.sort_by(sort_by)
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=max(1, row_group_rows), use_dictionary=_string_columns(schema),
                   write_statistics=True)
    with storage.atomic_write(uri) as handle:
        handle.write(buf.getvalue())
    return table


@dataclass(frozen=True)
class _Footer:
    schema: pa.Schema
    num_rows: int
    id_ranges: tuple[tuple[str, str] | None, ...]   # per row group (min, max) of clip_id; None: unknown


_FOOTERS: OrderedDict = OrderedDict()
_FOOTERS_LOCK = threading.Lock()
_FOOTERS_MAX = 100_000


def _files(uri: str) -> list[tuple[str, str]]:
    """(uri, change token) of every Parquet file of a table, in sorted order, from one listing. The token is the
    fingerprints' (store token plus inode): a file rewritten twice in one clock tick must not serve the cached
    footer of its previous state."""
    fs, path = storage.filesystem(uri)
    if not fs.exists(path):
        return []
    if fs.isfile(path):
        info = fs.info(path)
        return [(str(uri), f"{info.get('size')}:{change_token(fs, path, info)}")]
    out = []
    for full, info in sorted(_find(fs, path).items()):
        base = full.rsplit("/", 1)[-1]
        if not full.endswith(".parquet") or base.startswith("."):
            continue
        out.append((_as_uri(uri, fs, full), f"{info.get('size')}:{change_token(fs, full, info)}"))
    return out


def _find(fs, path: str) -> dict:
    # A part removed by a concurrent merge while the folder is walked fails its stat: walk again.
    for _ in range(_VANISHED_RETRIES - 1):
        try:
            return fs.find(path, detail=True)
        except FileNotFoundError:
            if not fs.exists(path):
                raise
    return fs.find(path, detail=True)


def _as_uri(base: str, fs, path: str) -> str:
    if "://" not in str(base):
        return path
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return path if path.startswith(f"{protocol}://") else f"{protocol}://{path}"


def _footer(uri: str, token: str) -> _Footer:
    key = (uri, token)
    with _FOOTERS_LOCK:
        hit = _FOOTERS.get(key)
        if hit is not None:
            _FOOTERS.move_to_end(key)
            return hit
    if storage.is_local(uri):  # pyarrow's own file reader: about twice as fast as through fsspec
        meta = pq.ParquetFile(storage.local_path(uri)).metadata
    else:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            meta = pq.ParquetFile(handle).metadata
    schema = meta.schema.to_arrow_schema()
    ranges = []
    col = schema.get_field_index("clip_id")
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(col).statistics if col >= 0 else None
        ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max else None)
    footer = _Footer(schema, meta.num_rows, tuple(ranges))
    with _FOOTERS_LOCK:
        _FOOTERS[key] = footer
        if len(_FOOTERS) > _FOOTERS_MAX:
            _FOOTERS.popitem(last=False)
    return footer


def _overlaps(ranges, ids: list[str]) -> bool:
    """Whether any of the sorted `ids` can lie in one of the (min, max) ranges."""
    for r in ranges:
        if r is None:
            return True
        lo, hi = r
        i = bisect.bisect_left(ids, lo)
        if i < len(ids) and ids[i] <= hi:
            return True
    return False


def count_rows(uri: str) -> tuple[int, int]:
    """(rows, files) of a table, from the footers."""
    files = _files(uri)
    return sum(_footer(u, t).num_rows for u, t in files), len(files)


def table_files(uri: str) -> list[str]:
    return [u for u, _ in _files(uri)]


_CHECKED: set = set()


def _checked(uri: str, token: str, footer: _Footer, name: str, schema, columns, check) -> None:
    """The schema check of a file, once per state of the file and expected schema (reads repeat it)."""
    key = (uri, token, name, id(schema), columns, id(check))
    if key in _CHECKED:
        return
    where = f"{name} ({uri})"
    if check is not None:
        check(footer.schema, where)
    else:
        check_footer(footer.schema, schema, columns, where)
    with _FOOTERS_LOCK:
        if len(_CHECKED) > _FOOTERS_MAX:
            _CHECKED.clear()
        _CHECKED.add(key)


def check_footer(footer_schema: pa.Schema, schema: pa.Schema | None, columns, where: str) -> None:
    """A file's schema against the expected one (only `columns` when given); columns the schema gained
    later may be absent."""
    if schema is None:
        return
    absent = added_columns(schema) - set(footer_schema.names)
    wanted = [schema.field(c) for c in (columns or schema.names) if c not in absent]
    validate(footer_schema.empty_table(), pa.schema(wanted), where)


def iter_tables(uri: str, schema: pa.Schema | None = None, name: str = "table", columns: list[str] | None = None,
                ids=None, filters=None, check=None, columns_if_present: list[str] | None = None):
    """One pyarrow Table per file of `uri` (files that cannot hold a wanted row are not opened).

    columns: projection; ids: only rows whose clip_id is one of these; filters: pyarrow DNF filters
    applied while reading (row-group pruning); check: a callable(footer schema, where) used instead of
    the schema check (for tables whose vector width varies, like embeddings)."""
    wanted = sorted(set(map(str, ids))) if ids is not None else None
    if wanted is not None and not wanted:
        return
    for file_uri, token in _files(uri):
        try:
            footer = _footer(file_uri, token)
        except FileNotFoundError as err:
            raise PartVanished(file_uri) from err
        if wanted is not None and not _overlaps(footer.id_ranges, wanted):
            continue
        _checked(file_uri, token, footer, name, schema, tuple(columns) if columns else None, check)
        cols = columns
        if cols is not None and schema is not None and added_columns(schema):
            cols = [c for c in cols if c in footer.schema.names or c not in added_columns(schema)]
        if columns_if_present is not None:
            cols = [c for c in columns_if_present if c in footer.schema.names]
        try:
            if wanted is None:
                table = _read_file(file_uri, cols, filters or None)
            else:
                table = _read_ids(file_uri, footer, wanted, cols, filters)
        except FileNotFoundError as err:
            raise PartVanished(file_uri) from err
        if table.num_rows:
            yield table


def _read_ids(uri: str, footer: _Footer, wanted: list[str], columns, filters) -> pa.Table:
    """The rows of `wanted` (sorted ids): only the row groups whose clip_id range can hold one are read."""
    groups = [g for g, r in enumerate(footer.id_ranges) if _overlaps([r], wanted)]
    filter_cols = [f[0] for f in (filters or [])]
    read_cols = None if columns is None else list(dict.fromkeys([*columns, "clip_id", *filter_cols]))
    if storage.is_local(uri):
        table = pq.ParquetFile(storage.local_path(uri)).read_row_groups(groups, columns=read_cols)
    else:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            table = pq.ParquetFile(handle).read_row_groups(groups, columns=read_cols)
    mask = pc.is_in(table.column("clip_id"), value_set=pa.array(wanted, pa.string()))
    table = table.filter(mask)
    if filters:
        import pyarrow.dataset as ds

        table = ds.dataset(table).to_table(filter=pq.filters_to_expression(filters))
    return table.select(columns) if columns is not None else table


def _read_file(uri: str, columns, filters) -> pa.Table:
    if storage.is_local(uri):
        return pq.read_table(storage.local_path(uri), columns=columns, filters=filters)
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle, columns=columns, filters=filters)


def prefetch(iterator, ahead: int = 1):
    """The items of `iterator`, produced `ahead` in advance on a background thread: the next shard is
    read and decoded (pyarrow releases the GIL) while the caller works on the current one."""
    import queue

    q: queue.Queue = queue.Queue(maxsize=ahead)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as err:  # handed to the consumer, raised there
            q.put(err)

    thread = threading.Thread(target=work, name="v2a-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _range_of(ranges) -> tuple[str | None, str | None]:
    if not ranges or any(r is None for r in ranges):
        return None, None
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


class PartVanished(FileNotFoundError):
    """A part listed at the start of a read was removed before it was opened. Parts are removed only
    after the rows they hold were written to another part (a shard's batches merged into one), so
    listing the table again reads those rows from there."""

    def __init__(self, uri: str):
        super().__init__(f"{uri} was removed while the table was being read (a concurrent merge of its rows "
                         "into another part); read the table again")
        self.uri = uri


def read_table(uri: str, schema: pa.Schema | None = None, name: str = "table", columns: list[str] | None = None,
               ids=None, filters=None) -> pa.Table:
    """The rows of a file or folder of shards as one table; an absent table reads as empty.

    Another process may merge parts while this one reads (concurrent generate shards on a cluster): a
    part gone between listing and opening restarts the read on a fresh listing, so no row is missed
    and none is read twice."""
    for _ in range(_VANISHED_RETRIES - 1):
        try:
            return _read_table_once(uri, schema, name, columns, ids, filters)
        except PartVanished as gone:
            log.info("%s; listing the table again", gone)
    return _read_table_once(uri, schema, name, columns, ids, filters)


def _read_table_once(uri, schema, name, columns, ids, filters) -> pa.Table:
    if schema is None and not _files(uri):
        raise FileNotFoundError(f"no Parquet files at {uri}")
    parts = []
    for t in iter_tables(uri, schema, name, columns, ids, filters):
        if schema is not None:
            t = _fill_added(t, schema, columns or schema.names)
            t = t.select(columns or schema.names)
            t = _cast_nulls(t, schema)
        parts.append(t)
    if not parts:
        empty = schema.empty_table() if schema is not None else pa.table({})
        return empty.select(columns) if columns and schema is not None else empty
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def _fill_added(table: pa.Table, schema: pa.Schema, wanted) -> pa.Table:
    # A file written before a column was added: that column is null in each of its rows.
    for name in wanted:
        if name not in table.column_names and name in added_columns(schema):
            table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
    return table


def _cast_nulls(table: pa.Table, schema: pa.Schema) -> pa.Table:
    # A column written as all-null has type null in that file; give it the schema's type so files concatenate.
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, f.name, pc.cast(table.column(i), schema.field(f.name).type))
    return table


def part_name(*key_parts) -> str:
    """A part file's name from what it holds (run, stage, shard, inputs): re-running the same work
    replaces the file instead of adding a second copy of its rows."""
    digest = short_digest("\x1f".join(map(str, key_parts)), 16)
    return f"part-{digest}.parquet"


def write_part(folder: str, rows, schema: pa.Schema, name: str, *key_parts, sort_by: str | None = None) -> str:
    """Write rows as the part file named by `key_parts` under folder (replacing an earlier copy)."""
    uri = storage.join(folder, part_name(*key_parts))
    write_table(rows, uri, schema, name, sort_by=sort_by)
    return uri
