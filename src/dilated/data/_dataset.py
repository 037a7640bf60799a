"""Many days of many instruments on disk: feed files converted into a partitioned Parquet dataset of books.

Layout (hive partitioning, read by ``pyarrow.dataset.dataset(DIR, partitioning="hive")``)::

    DIR/instrument=ESH4/date=2023-12-24/part-0.parquet   one book (write_book's columns) per instrument and date
    DIR/_manifest.json                                   what was converted from what (names starting with "_" or
                                                         "." are skipped by pyarrow.dataset, temporary files too)

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

Resume: a group whose files (path, size, mtime) and settings equal the manifest's, with every part on disk, is
skipped. Because an instrument's book flows through all its files, a changed or added file redoes its whole group.
Every file is written under a temporary name then renamed; the manifest is rewritten (atomically) after each group.

Tick size per instrument (``tick_source`` says which): ``tick_size=`` if given; else the feed's instrument
definitions, where a Databento ``definition`` file is among the sources (its ``min_price_increment`` per
``raw_symbol``; such files are read, not converted); else the smallest gap between adjacent quoted levels seen in the
book (``observed_tick_size``, always recorded).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

DATASET_FORMATS = ("databento-mbo", "databento-mbp10", "binance", "bitstamp")
DATE_RULE = "the UTC date of each row's receive time ts (no feed rebuilt here states an exchange session date)"
MANIFEST = "_manifest.json"
PART = "part-0.parquet"
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
    """One instrument's conversion: its files in time order, the dataset root, the settings that decide its rows."""

    instrument: str
    format: str
    files: list[SourceFile]
    root: str
    settings: dict[str, Any] = field(default_factory=dict)


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


def _smallest_step(values: np.ndarray) -> float:
    """The smallest positive gap between adjacent quoted levels of rows ``values (rows, 4 * levels)`` (inf: none)."""
    asks = values[:, 4::4] - values[:, 0:-4:4]  # ask_price_{i+1} - ask_price_i
    bids = values[:, 2:-4:4] - values[:, 6::4]  # bid_price_i - bid_price_{i+1}
    gaps = np.concatenate([asks.ravel(), bids.ravel()])
    gaps = gaps[gaps > 0]  # NaN compares False
    return float(gaps.min()) if len(gaps) else float("inf")


def _instrument_dir(root: Path, instrument: str) -> Path:
    return root / f"instrument={quote(instrument, safe='')}"


def _date(day: int) -> str:
    return str(np.datetime64(day, "D"))


def convert_group(job: GroupJob) -> dict[str, Any]:
    """Convert one group (module notes); never raises: a failure is the entry's ``error`` (one line naming the file).

    Returns: the group's manifest entry (format, sources, settings, rows, dates {date: rows}, stats, tick size).
    """
    import pyarrow.parquet as pq

    from dilated.data._book_readers import book_schema, book_table
    from dilated.data._convert import book_rows
    from dilated.data._orderbook import describe_sources

    folder = _instrument_dir(Path(job.root), job.instrument)
    levels = int(job.settings["levels"])
    entry: dict[str, Any] = {
        "instrument": job.instrument,
        "format": job.format,
        "sources": [asdict(f) for f in job.files],
        "settings": job.settings,
        "rows": 0,
        "dates": {},
        "stats": {},
        "observed_tick_size": None,
        "error": None,
    }
    temporary = f".{PART}.tmp-{uuid.uuid4().hex[:12]}"
    writers: dict[int, Any] = {}
    counts: dict[int, int] = {}
    paths = [Path(f.path) for f in job.files]
    try:
        rows = book_rows(paths, job.format, levels, **job.settings["options"])
        schema, step = book_schema(levels), float("inf")
        for ts, values in rows.chunks:
            if not len(ts):
                continue
            step = min(step, _smallest_step(values))
            days = ts // _DAY_NS
            for day in np.unique(days).tolist():
                take = days == day
                if day not in writers:
                    (folder / f"date={_date(day)}").mkdir(parents=True, exist_ok=True)
                    writers[day] = pq.ParquetWriter(folder / f"date={_date(day)}" / temporary, schema)
                writers[day].write_table(book_table(ts[take], values[take], schema))
                counts[day] = counts.get(day, 0) + int(take.sum())
        for writer in writers.values():
            writer.add_key_value_metadata(rows.metadata())
            writer.close()
        for day in writers:
            os.replace(folder / f"date={_date(day)}" / temporary, folder / f"date={_date(day)}" / PART)
        entry.update(rows=sum(counts.values()), stats=rows.stats)
        entry["dates"] = {_date(day): counts[day] for day in sorted(counts)}
        if np.isfinite(step):
            entry["observed_tick_size"] = float(f"{step:.10g}")
        _remove_stale(folder, set(entry["dates"]))
    except Exception as error:  # noqa: BLE001 - any failure stops this group only; it is reported, not raised
        for writer in writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        message = _one_line(error)
        if not any(str(p) in message or p.name in message for p in paths):
            message = f"{describe_sources(paths)}: {message}"
        entry["error"] = message
    finally:
        for day in writers:
            (folder / f"date={_date(day)}" / temporary).unlink(missing_ok=True)
    return entry


def _remove_stale(folder: Path, dates: set[str]) -> None:
    """Remove the date partitions of ``folder`` that the group no longer produces."""
    for part in folder.glob(f"date=*/{PART}"):
        if part.parent.name.removeprefix("date=") not in dates:
            part.unlink()
            with contextlib.suppress(OSError):
                part.parent.rmdir()


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


def _done(entry: dict[str, Any] | None, job: GroupJob) -> bool:
    """Whether a manifest entry already holds ``job``'s conversion, with its parts on disk."""
    if not entry or entry.get("error") or entry.get("settings") != job.settings:
        return False
    if entry.get("sources") != [asdict(f) for f in job.files]:
        return False
    folder = _instrument_dir(Path(job.root), job.instrument)
    return all((folder / f"date={date}" / PART).is_file() for date in entry.get("dates", {}))


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

    if not sources:
        raise ValueError("no feed file given")
    if tick_size is not None and not tick_size > 0:
        raise ValueError(f"tick_size must be > 0; got {tick_size}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    root = Path(output)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder; a dataset is written into a folder")
    manifest = read_manifest(root)
    root.mkdir(parents=True, exist_ok=True)
    settings = {"levels": check_levels(levels), "options": dict(sorted(options.items())), "date": DATE_RULE}
    groups, ticks, failures = group_sources(sources, format, instrument)
    manifest["failures"] = failures
    report: dict[str, Any] = {"manifest": str(root / MANIFEST), "converted": [], "skipped": [], "failed": {}}
    report["failed"].update({f["source"]: f["error"] for f in failures})
    jobs = []
    for name, files in groups.items():
        kinds = sorted({f.format for f in files})
        if len(kinds) > 1:
            error = f"instrument {name}: files of {len(kinds)} formats ({', '.join(kinds)}); one feed per instrument"
            manifest["instruments"][name] = {"sources": [asdict(f) for f in files], "error": error}
            report["failed"][name] = error
            continue
        job = GroupJob(name, kinds[0], files, str(root), settings)
        if _done(manifest["instruments"].get(name), job):
            report["skipped"].append(name)
        else:
            jobs.append(job)
    for name in report["skipped"]:
        manifest["instruments"][name] = _set_tick(manifest["instruments"][name], tick_size, ticks.get(name))
    _write_json(root / MANIFEST, manifest)
    run = (
        _run_dask(jobs, scheduler, workers)
        if scheduler or workers
        else _run_local(jobs, processes or os.cpu_count() or 1)
    )
    bar = tqdm(total=len(jobs), desc="instruments", unit="group", disable=not (progress and sys.stderr.isatty()))
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
            "files": len(entry.get("sources", [])),
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


def format_dataset_info(info: dict[str, Any]) -> str:
    """:func:`dataset_info` as plain text."""
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
    for failure in info["failures"]:
        lines.append(f"  failed: {failure['source']}: {failure['error']}")
    return "\n".join(lines)
