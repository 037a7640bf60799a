"""Many days of many instruments on disk: feed files converted into a partitioned Parquet dataset of books.

Layout (hive partitioning, read by ``pyarrow.dataset.dataset(DIR, partitioning="hive")``)::

    DIR/instrument=ESH4/date=2023-12-24/part-<first ts>-<digest>.parquet   the rows of one source file on one date
    DIR/instrument=ESH4/_state/<key>.npz                                   the book after one source file (resume)
    DIR/_manifest.json         what was converted from what (pyarrow.dataset skips names starting with "_" or ".",
                               temporary files too)

Each part has :func:`~dilated.data.write_book`'s columns; part names sort in time order within a date folder.

Instrument of a file: ``instrument=`` if given (every file one instrument), else the feed's own symbol (a DBN
header naming one symbol; the ``s`` field of a Binance diff), else the file name up to its first ``-``, ``_`` or
``.``, upper-cased (``btcusd_20240808.csv`` -> ``BTCUSD``).

Date (:data:`DATE_RULE`): the UTC calendar date of a row's receive time ``ts``. The exchange session date would come
first where a feed states it, but none of the feeds rebuilt here (Databento MBO / MBP-10 records, Binance diffs,
Bitstamp orders) carries one in its records, so every row is dated by its UTC receive time.

Groups: the files of one instrument are one group, replayed in time order (their first receive time, then name) by
one reader whose book carries across files and dates, exactly as if the files were one (a Databento snapshot file
opens the next session; Binance day 2 continues day 1); its rows are split by date as they come. Groups run in
parallel, in processes here or on Dask distributed workers (:func:`convert_dataset`); a group that fails (a bad
file: its error names it) stops, the others go on.

Resume: a file whose path, size, mtime and settings equal the manifest's, with its parts on disk, and every earlier
file of its group too, is not written again; a group whose files are all such is skipped without reading anything.
Otherwise the files from the first changed or new one on are written anew (a changed file is redone with every
later file of its instrument, since the book flows through them), starting from the book after the unchanged ones:
for Databento groups the state saved after the last of them (``DIR/instrument=X/_state/``,
:mod:`dilated.data._book_state`, keyed by the group's settings and every source up to that file), else (no valid
state, or a Binance / Bitstamp group) a replay from the group's first file, the unchanged files not written. Every
file is written under a temporary name then renamed; the manifest is rewritten (atomically) after each group.

Tick size per instrument (``tick_source`` says which): ``tick_size=`` if given; else the feed's instrument
definitions, where a Databento ``definition`` file is among the sources (its ``min_price_increment`` per
``raw_symbol``; such files are read, not converted); else the smallest gap between adjacent quoted levels seen in the
book (``observed_tick_size``, always recorded).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from dilated._progress import bar_disabled

DATASET_FORMATS = ("databento-mbo", "databento-mbp10", "binance", "bitstamp")
DATE_RULE = "the UTC date of each row's receive time ts (no feed rebuilt here states an exchange session date)"
MANIFEST = "_manifest.json"
STATES = "_state"  # an instrument's saved book states: DIR/instrument=X/_state/<key>.npz
_DAY_NS = 86_400 * 10**9
_MANIFEST_VERSION = 1


def is_dataset_target(output: str | Path) -> bool:
    """Whether ``dilated data convert -o OUTPUT`` names a dataset folder: a trailing slash or an existing folder."""
    return str(output).endswith(("/", os.sep)) or Path(output).is_dir()


@dataclass(frozen=True)
class SourceFile:
    """One feed file as the manifest records it: resolved path, size, mtime (ns), format, instrument, first ts."""

    path: str
    size: int
    mtime_ns: int
    format: str
    instrument: str
    start: int


@dataclass
class GroupJob:
    """One instrument's conversion: its files in time order, the dataset root, the settings that decide its rows,
    the files already converted (a prefix of ``files``) and the parts that are no longer valid."""

    instrument: str
    format: str
    files: list[SourceFile]
    root: str
    settings: dict[str, Any] = field(default_factory=dict)
    kept: list[dict[str, Any]] = field(default_factory=list)  # manifest records of files[:len(kept)]: replayed only
    stale: list[str] = field(default_factory=list)  # parts (relative to root) to remove first


# ------------------------------------------------------------------------------------------------ grouping


def _head_lines(path: Path, count: int) -> list[str]:
    import gzip

    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as text:
        return [line for _, line in zip(range(count), text)]


def _name_instrument(path: Path) -> str:
    return re.split(r"[-_.]", path.name, maxsplit=1)[0].upper() or path.name


def _probe(path: Path, format: str | None, instrument: str | None) -> SourceFile:
    """The file's format, instrument and first receive time (module notes), reading its header or first lines."""
    from dilated.data._convert import detect_format
    from dilated.data._dbn_records import DbnRecords

    format = format or detect_format(path)
    if format not in DATASET_FORMATS:
        raise ValueError(
            f"{path}: a dataset folder takes {', '.join(DATASET_FORMATS)} feeds, not {format} (LOBSTER ships its "
            "books: convert it to one .parquet file)"
        )
    name, start = None, 0
    if format.startswith("databento"):
        with DbnRecords(path) as reader:
            symbols = list(reader.metadata.symbols)
            name, start = (symbols[0] if len(symbols) == 1 else None), int(reader.metadata.start)
    elif format == "binance":
        for line in _head_lines(path, 1000):
            stamp, _, text = line.partition(" ")
            if not start and stamp.isdigit():
                start = int(stamp)
            if '"depthUpdate"' in text:
                message = json.loads(text)
                name = str(message.get("data", message).get("s", "")) or None
                break
    else:
        header, *first = _head_lines(path, 2)
        columns = [c.strip() for c in header.split(",")]
        if first and "timestamp" in columns:
            start = int(float(first[0].split(",")[columns.index("timestamp")])) * 1_000_000
    stat = path.stat()
    return SourceFile(
        str(path.resolve()), stat.st_size, stat.st_mtime_ns, format, instrument or name or _name_instrument(path), start
    )


def _definitions(path: Path) -> dict[str, float] | None:
    """The tick size per raw symbol of a Databento instrument-definition file; None for any other file."""
    from dilated.data._databento import dbn_schema, read_dbn

    with open(path, "rb") as raw:
        head = raw.read(4)
    if head[:3] != b"DBN" and head != b"\x28\xb5\x2f\xfd":
        return None
    if dbn_schema(path) != "definition":
        return None
    _, records = read_dbn(path)
    return {str(r.raw_symbol): float(f"{r.min_price_increment * 1e-9:.10g}") for r in records}


def group_sources(
    sources: Sequence[str | Path], format: str | None = None, instrument: str | None = None
) -> tuple[dict[str, list[SourceFile]], dict[str, float], list[dict[str, str]]]:
    """The files by instrument, each group in time order; the tick sizes of the instrument definitions among them;
    and the files that could not be read (source, error)."""
    groups: dict[str, list[SourceFile]] = {}
    ticks: dict[str, float] = {}
    failures = []
    for source in sources:
        try:
            defined = _definitions(Path(source)) if Path(source).is_file() else None
            if defined is not None:
                ticks.update(defined)
                continue
            found = _probe(Path(source), format, instrument)
        except (OSError, ValueError) as error:
            failures.append({"source": str(source), "error": _one_line(error)})
            continue
        groups.setdefault(found.instrument, []).append(found)
    ordered = {key: sorted(files, key=lambda f: (f.start, f.path)) for key, files in sorted(groups.items())}
    return ordered, ticks, failures


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# ------------------------------------------------------------------------------------------------ one group


def _instrument_dir(root: Path, instrument: str) -> Path:
    return root / f"instrument={quote(instrument, safe='')}"


def _date(day: int) -> str:
    return str(np.datetime64(day, "D"))


def part_name(source: SourceFile) -> str:
    """The Parquet file of one source's rows in a date folder: its first receive time (so names sort in time
    order), then a digest of its path."""
    digest = hashlib.sha1(source.path.encode()).hexdigest()[:8]
    return f"part-{max(source.start, 0):020d}-{digest}.parquet"


class _FileWriter:
    """One source file's rows, split by date into ``folder/date=D/part-...parquet``, written under temporary names
    (on a background thread, :class:`~dilated.data._orderbook.BackgroundWrites`) and renamed by :meth:`finish`."""

    def __init__(self, folder: Path, source: SourceFile, schema: Any) -> None:
        from dilated.data._orderbook import BackgroundWrites

        self.folder, self.source, self.schema = folder, source, schema
        self.name, self.temporary = part_name(source), f".{part_name(source)}.tmp-{uuid.uuid4().hex[:12]}"
        self.writers: dict[int, Any] = {}
        self.counts: dict[int, int] = {}
        self.writes = BackgroundWrites()

    def write(self, ts: np.ndarray, values: np.ndarray) -> None:
        from dilated.data._orderbook import book_table, book_writer

        days = ts // _DAY_NS
        dates = np.unique(days).tolist()
        for day in dates:
            take = slice(None) if len(dates) == 1 else days == day  # one date: no copy
            if day not in self.writers:
                (self.folder / f"date={_date(day)}").mkdir(parents=True, exist_ok=True)
                self.writers[day] = book_writer(self.folder / f"date={_date(day)}" / self.temporary, self.schema)
            rows = book_table(ts[take], values[take], self.schema)
            self.writes.write(self.writers[day], rows)
            self.counts[day] = self.counts.get(day, 0) + rows.num_rows

    def finish(self, metadata: dict[bytes, str]) -> dict[str, Any]:
        """Close and rename the parts; the file's manifest record (source, rows, dates {date: rows}, parts)."""
        self.writes.close()
        for day, writer in self.writers.items():
            writer.add_key_value_metadata(metadata)
            writer.close()
            os.replace(
                self.folder / f"date={_date(day)}" / self.temporary, self.folder / f"date={_date(day)}" / self.name
            )
        days = sorted(self.counts)
        return {
            "source": asdict(self.source),
            "rows": sum(self.counts.values()),
            "dates": {_date(day): self.counts[day] for day in days},
            "parts": [f"{self.folder.name}/date={_date(day)}/{self.name}" for day in days],
        }

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.writes.close()
        for day, writer in self.writers.items():
            with contextlib.suppress(Exception):
                writer.close()
            (self.folder / f"date={_date(day)}" / self.temporary).unlink(missing_ok=True)


def _state_keys(job: GroupJob) -> list[str]:
    """The key of the book state after each of the group's files: its instrument, format and settings, and every
    source up to that file (a chain of digests)."""
    from dilated.data._book_state import state_key

    keys: list[str] = []
    for source in job.files:
        previous = keys[-1] if keys else {"instrument": job.instrument, "format": job.format, "settings": job.settings}
        keys.append(state_key(previous=previous, source=asdict(source)))
    return keys


def _state_path(folder: Path, key: str) -> Path:
    return folder / STATES / f"{key[:32]}.npz"


def _saved_state(folder: Path, keys: list[str], kept: int) -> dict[str, np.ndarray] | None:
    """The state after the group's ``kept`` converted files (a saved ``step`` among it), or None: replay them."""
    from dilated.data._book_state import load_state

    state = load_state(_state_path(folder, keys[kept - 1]), keys[kept - 1]) if kept else None
    return state if state is not None and "step" in state else None


def _drop_states(folder: Path, keys: list[str]) -> None:
    """Remove the saved states of files no longer among the group's (or in another order)."""
    names = {_state_path(folder, key).name for key in keys}
    for path in (folder / STATES).glob("*.npz"):
        if path.name not in names:
            path.unlink(missing_ok=True)


def convert_group(job: GroupJob) -> dict[str, Any]:
    """Convert one group (module notes): go on from the book state saved after its ``job.kept`` files (converted
    before), or replay them without writing them; write the others. Never raises: a failure is the entry's
    ``error`` (one line naming the file).

    Returns: the group's manifest entry (format, settings, files: per source file its rows, dates and parts; rows,
    dates {date: rows} and the reader's stats over the group; the smallest level gap seen; the converted files
    replayed because no saved state was found, ``replayed``).
    """
    from dilated.data._book_readers import RESUMABLE, State
    from dilated.data._book_state import save_state
    from dilated.data._convert import book_rows
    from dilated.data._orderbook import book_schema, describe_sources, smallest_level_gap

    root = Path(job.root)
    folder = _instrument_dir(root, job.instrument)
    for part in job.stale:  # parts of files to redo, or no longer among the sources
        (root / part).unlink(missing_ok=True)
    levels = int(job.settings["levels"])
    files: list[dict[str, Any]] = list(job.kept)
    entry: dict[str, Any] = {
        "instrument": job.instrument,
        "format": job.format,
        "settings": job.settings,
        "files": files,
        "stats": {},
        "observed_tick_size": None,
        "error": None,
    }
    paths = [Path(f.path) for f in job.files]
    writer: _FileWriter | None = None
    resumable = job.format in RESUMABLE
    keys = _state_keys(job) if resumable else []
    state = _saved_state(folder, keys, len(job.kept)) if resumable else None
    entry["replayed"] = 0 if state is not None else len(job.kept)
    schema, step = book_schema(levels), float(state.pop("step")[0]) if state is not None else float("inf")

    ended: dict[int, dict[bytes, str]] = {}  # each file's part metadata at its end: its sources and stats so far

    def save(index: int, arrays: State) -> None:  # the book state after file ``index``, for a later resume
        ended[index] = rows.metadata(describe_sources(paths[: index + 1]))
        save_state(_state_path(folder, keys[index]), keys[index], {**arrays, "step": np.array([step])})

    def finished() -> dict[bytes, str]:  # the metadata of the next file to finish
        return ended.pop(len(files), None) or rows.metadata()

    try:
        on_file_end = save if resumable else None
        rows = book_rows(paths, job.format, levels, resume=state, on_file_end=on_file_end, **job.settings["options"])
        for index, ts, values in rows.chunks:
            step = min(step, smallest_level_gap(values))
            while len(files) < index:  # the files before this one are complete
                files.append((writer or _FileWriter(folder, job.files[len(files)], schema)).finish(finished()))
                writer = None
            if index >= len(job.kept):  # not a file replayed only
                writer = writer or _FileWriter(folder, job.files[index], schema)
                if len(ts):
                    writer.write(ts, values)
        while len(files) < len(job.files):  # the last file, and any that gave no rows
            files.append((writer or _FileWriter(folder, job.files[len(files)], schema)).finish(finished()))
            writer = None
        entry["stats"] = rows.stats
        if np.isfinite(step):
            entry["observed_tick_size"] = float(f"{step:.10g}")
        if resumable:
            _drop_states(folder, keys)
    except Exception as error:  # noqa: BLE001 - any failure stops this group only; it is reported, not raised
        entry["error"] = _failure(error, paths, files, writer, rows.metadata if writer is not None else dict)
    entry["rows"] = sum(f["rows"] for f in files)
    entry["dates"] = _merge(f["dates"] for f in files)
    return entry


def _failure(
    error: BaseException,
    paths: list[Path],
    files: list[dict[str, Any]],
    writer: _FileWriter | None,
    metadata: Callable[[], dict[bytes, str]],
) -> str:
    """The one-line error of a failed group, naming its file; the part being written is kept if the error names a
    later file (this one was read whole), else discarded."""
    from dilated.data._orderbook import describe_sources

    message = _one_line(error)
    failed = next((i for i, path in enumerate(paths) if str(path) in message), -1)
    if writer is not None and len(files) < failed:
        files.append(writer.finish(metadata()))
    elif writer is not None:
        writer.discard()
    return message if failed >= 0 else f"{describe_sources(paths)}: {message}"


def _merge(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for date, rows in part.items():
            total[date] = total.get(date, 0) + rows
    return dict(sorted(total.items()))


# ------------------------------------------------------------------------------------------------ many groups


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The dataset's manifest (module notes); an empty one for a folder without one."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return {"version": _MANIFEST_VERSION, "date": DATE_RULE, "instruments": {}, "failures": []}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a dataset manifest ({_one_line(error)}); remove it to start over") from None
    if not isinstance(manifest, dict) or manifest.get("version") != _MANIFEST_VERSION:
        raise ValueError(f"{path}: not a version-{_MANIFEST_VERSION} dataset manifest; remove it to start over")
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _resume(entry: dict[str, Any] | None, job: GroupJob) -> GroupJob:
    """``job`` with the files the manifest ``entry`` already holds (same source, size, mtime and settings, parts on
    disk, every earlier file too) as ``kept``, and the parts of the others as ``stale``."""
    old = entry.get("files", []) if entry and entry.get("settings") == job.settings else []
    kept: list[dict[str, Any]] = []
    for source, record in zip(job.files, old):
        if record["source"] != asdict(source) or not all((Path(job.root) / p).is_file() for p in record["parts"]):
            break
        kept.append(record)
    stale = [part for record in (entry or {}).get("files", [])[len(kept) :] for part in record.get("parts", [])]
    return replace(job, kept=kept, stale=stale)


def _run_local(jobs: list[GroupJob], processes: int) -> Iterator[dict[str, Any]]:
    if processes <= 1 or len(jobs) <= 1:
        yield from map(convert_group, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads (Numba, Arrow)
    with ProcessPoolExecutor(min(processes, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(convert_group, job): job for job in jobs}
        for future in as_completed(futures):
            yield future.result()


def _run_dask(jobs: list[GroupJob], scheduler: str | None, workers: int | None) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError(
            'scheduler / workers run the conversion on Dask distributed, which is not installed: pip install "dilated[dask]"'
        ) from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            cluster = stack.enter_context(
                LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None)
            )
            client = stack.enter_context(Client(cluster))
        futures = client.map(convert_group, jobs, pure=False)
        for future in as_completed(futures):
            yield future.result()


def convert_dataset(
    sources: Sequence[str | Path],
    output: str | Path,
    format: str | None = None,
    levels: int = 10,
    instrument: str | None = None,
    tick_size: float | None = None,
    processes: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Convert feed files into the partitioned dataset at ``output`` (module notes), resuming where it stopped.

    Args:
        sources: feed files of any number of instruments and days.
        format: one of :data:`DATASET_FORMATS` for every file; default: detected per file.
        instrument: put every file in this one instrument (default: each file's own, module notes).
        tick_size: every instrument's tick size (default: from the Databento instrument-definition files among
            ``sources``, else the smallest observed level gap).
        processes: groups converted at once in local processes (default: the CPU count).
        scheduler: the address of a Dask distributed scheduler to run the groups on; ``workers``: start a local
            Dask cluster of that many worker processes instead (``pip install "dilated[dask]"``).
        progress: a bar over the groups, shown on a terminal only.
        options: reader options (:data:`~dilated.data._convert.ROW_OPTIONS`), e.g. ``gaps="truncate"``.

    Returns: ``{"manifest": path, "converted": [...], "skipped": [...], "failed": {instrument or file: error}}``.
    """
    from tqdm import tqdm

    from dilated.data._orderbook import check_levels

    root = Path(output)
    _check_arguments(sources, root, tick_size, workers)
    manifest = read_manifest(root)
    root.mkdir(parents=True, exist_ok=True)
    settings = {"levels": check_levels(levels), "options": dict(sorted(options.items())), "date": DATE_RULE}
    groups, ticks, failures = group_sources(sources, format, instrument)
    manifest["failures"] = failures
    report: dict[str, Any] = {"manifest": str(root / MANIFEST), "converted": [], "skipped": [], "failed": {}}
    report["failed"].update({f["source"]: f["error"] for f in failures})
    jobs = _plan(groups, manifest, root, settings, report)
    for name in report["skipped"]:
        manifest["instruments"][name] = _set_tick(manifest["instruments"][name], tick_size, ticks.get(name))
    _write_json(root / MANIFEST, manifest)
    run = (
        _run_dask(jobs, scheduler, workers)
        if scheduler or workers
        else _run_local(jobs, processes or os.cpu_count() or 1)
    )
    bar = tqdm(total=len(jobs), desc="instruments", unit="group", disable=bar_disabled(progress))
    for entry in run:
        name = entry["instrument"]
        manifest["instruments"][name] = _set_tick(entry, tick_size, ticks.get(name))
        if entry["error"]:
            report["failed"][name] = entry["error"]
        else:
            report["converted"].append(name)
        _write_json(root / MANIFEST, manifest)
        bar.update(1)
    bar.close()
    return report


def _check_arguments(sources: Sequence[str | Path], root: Path, tick_size: float | None, workers: int | None) -> None:
    """The one-line refusals of :func:`convert_dataset`'s arguments."""
    if not sources:
        raise ValueError("no feed file given")
    if tick_size is not None and not tick_size > 0:
        raise ValueError(f"tick_size must be > 0; got {tick_size}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder; a dataset is written into a folder")


def _plan(
    groups: dict[str, list[SourceFile]],
    manifest: dict[str, Any],
    root: Path,
    settings: dict[str, Any],
    report: dict[str, Any],
) -> list[GroupJob]:
    """The groups to convert (what the manifest says is done is skipped); a group mixing formats fails here."""
    jobs = []
    for name, files in groups.items():
        kinds = sorted({f.format for f in files})
        if len(kinds) > 1:
            error = f"instrument {name}: files of {len(kinds)} formats ({', '.join(kinds)}); one feed per instrument"
            manifest["instruments"][name] = {"files": [], "error": error}
            report["failed"][name] = error
            continue
        job = _resume(manifest["instruments"].get(name), GroupJob(name, kinds[0], files, str(root), settings))
        old = manifest["instruments"].get(name, {})
        if len(job.kept) == len(files) == len(old.get("files", [])) and not old.get("error"):
            report["skipped"].append(name)
        else:
            jobs.append(job)
    return jobs


def _set_tick(entry: dict[str, Any], option: float | None, defined: float | None) -> dict[str, Any]:
    """The entry with its tick size from the option, else the definitions, else the observed one (module notes)."""
    observed = entry.get("observed_tick_size")
    for value, source in ((option, "option"), (defined, "definition"), (observed, "observed")):
        if value is not None:
            return {**entry, "tick_size": float(value), "tick_source": source}
    return {**entry, "tick_size": None, "tick_source": None}


# ------------------------------------------------------------------------------------------------ info


def dataset_info(root: str | Path) -> dict[str, Any]:
    """A dataset's summary from its manifest: per instrument its format, dates, rows, tick size and error; totals
    and the files that could not be grouped (JSON-ready)."""
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise ValueError(f"{root}: no {MANIFEST}; not a dataset written by dilated data convert -o DIR/")
    manifest = read_manifest(root)
    instruments = {}
    for name, entry in sorted(manifest["instruments"].items()):
        dates = sorted(entry.get("dates", {}))
        instruments[name] = {
            "format": entry.get("format"),
            "files": len(entry.get("files", [])),
            "dates": len(dates),
            "first_date": dates[0] if dates else None,
            "last_date": dates[-1] if dates else None,
            "rows": int(entry.get("rows", 0)),
            "tick_size": entry.get("tick_size"),
            "tick_source": entry.get("tick_source"),
            "error": entry.get("error"),
        }
    failures = [{"source": f["source"], "error": f["error"]} for f in manifest.get("failures", [])]
    failures += [{"source": name, "error": row["error"]} for name, row in instruments.items() if row["error"]]
    return {
        "path": str(root),
        "date": manifest.get("date", DATE_RULE),
        "instruments": instruments,
        "rows": sum(row["rows"] for row in instruments.values()),
        "dates": len({d for entry in manifest["instruments"].values() for d in entry.get("dates", {})}),
        "failures": failures,
    }


def format_dataset_info(
    info: dict[str, Any], balances: dict[str, dict[int, dict[str, Any]] | None] | None = None
) -> str:
    """:func:`dataset_info` as plain text, with each instrument's label balance where ``balances`` has one
    (:func:`~dilated.data.dataset_label_balance`)."""
    from dilated.data._lob_labels import format_label_balance

    lines = [
        f"{info['path']}: {len(info['instruments'])} instruments, {info['dates']} dates, {info['rows']:,} rows",
        f"  date: {info['date']}",
    ]
    for name, row in info["instruments"].items():
        tick = f"tick {row['tick_size']:g} ({row['tick_source']})" if row["tick_size"] else "tick unknown"
        span = f"{row['first_date']} .. {row['last_date']}" if row["dates"] else "no dates"
        lines.append(
            f"  {name}: {row['format']}, {row['files']} files, {row['dates']} dates ({span}), {row['rows']:,} rows, "
            f"{tick}" + ("  FAILED" if row["error"] else "")
        )
        lines += format_label_balance((balances or {}).get(name) or {}, "    ")
    for failure in info["failures"]:
        lines.append(f"  failed: {failure['source']}: {failure['error']}")
    return "\n".join(lines)
