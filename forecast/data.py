"""Reading series from a CSV file: a time column, the target and covariate columns, and
optionally a series column holding several series in one file (one global model).

Each series is laid on its regular grid (:mod:`forecast.timeaxis`): missing stamps (gaps) are
inserted and missing values (empty cells, ``NA``, ``nan``) filled by linear interpolation
(the ends by the nearest value), and both are counted for the log. A time or a value that cannot
be read is an error naming the file, the line and the column. csv + numpy only: the predict
command runs on the base install.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from forecast.timeaxis import Frequency, TimeAxis, TimeStamp, parse_time

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}


@dataclass
class Series:
    """One series on its grid: ``values`` [time, channels] (the target first, then the
    covariates), the stamps of its first and last rows, and what was filled."""

    name: str
    values: np.ndarray
    first: TimeStamp
    last: TimeStamp
    axis: TimeAxis
    gaps: int = 0  # stamps missing from the file, inserted
    missing: int = 0  # values missing (in the file or at inserted stamps), interpolated
    lines: list[int] = field(default_factory=list)


@dataclass
class DataSpec:
    """Which columns to read: ``time_column`` (empty: the first column), ``target`` (empty:
    the first column after the time and series columns), ``covariates`` (comma-separated
    names), ``series_column`` (empty: one series), ``freq`` (empty: inferred)."""

    time_column: str = ""
    target: str = ""
    covariates: str = ""
    series_column: str = ""
    freq: str = ""

    @classmethod
    def from_config(cls, config) -> DataSpec:
        get = config.get if isinstance(config, dict) else lambda k, d="": getattr(config, k, d)
        return cls(*(get(k, "") or "" for k in cls.__dataclass_fields__))


def read_series(path: str, spec: DataSpec) -> list[Series]:
    """Every series of the CSV file at ``path`` (``.gz`` is read too). ValueError naming the
    file and line on anything it cannot read."""
    from forecast.timeaxis import parse_freq

    rows, header = _read_rows(path)
    columns = _choose_columns(path, header, spec)
    time_index, series_index, value_indexes = columns
    freq = parse_freq(spec.freq) if spec.freq else None
    groups: dict[str, list] = {}
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(
                f"{path}: line {line}: {len(row)} fields, the header has {len(header)}"
            )
        if not any(cell.strip() for cell in row):
            continue
        raw_time = row[time_index]
        try:
            stamp = parse_time(raw_time)
        except ValueError:
            raise ValueError(
                f"{path}: line {line}: cannot read the time {raw_time!r} in column "
                f"{header[time_index]!r} (a number or an ISO date such as 2020-01-31)"
            ) from None
        values = []
        for index in value_indexes:
            cell = row[index].strip()
            if cell.lower() in MISSING:
                values.append(np.nan)
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise ValueError(
                    f"{path}: line {line}: the value {cell!r} in column {header[index]!r} is "
                    "not a number (leave the cell empty for a missing value)"
                ) from None
        name = row[series_index].strip() if series_index is not None else ""
        groups.setdefault(name, []).append((line, stamp, values))
    if not groups:
        raise ValueError(f"{path}: no data rows after the header")
    return [_on_grid(path, name, entries, freq) for name, entries in groups.items()]


def _read_rows(path: str) -> tuple[list[tuple[int, list[str]]], list[str]]:
    import gzip

    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a CSV file") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror})") from None
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line} is not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ValueError(f"{path}: empty file; a CSV with a header line is expected") from None
    return [(reader.line_num, row) for row in reader], header


def _choose_columns(path: str, header: list[str], spec: DataSpec):
    def index_of(name: str, role: str) -> int:
        if name not in header:
            raise ValueError(f"{path}: no {role} column {name!r} (columns: {', '.join(header)})")
        return header.index(name)

    time_index = index_of(spec.time_column, "time") if spec.time_column else 0
    series_index = index_of(spec.series_column, "series") if spec.series_column else None
    taken = {time_index, series_index}
    if spec.target:
        target = index_of(spec.target, "target")
    else:
        free = [i for i in range(len(header)) if i not in taken]
        if not free:
            raise ValueError(f"{path}: no value column besides the time column")
        target = free[0]
    covariates = [index_of(c.strip(), "covariate") for c in spec.covariates.split(",") if c.strip()]
    return time_index, series_index, [target, *covariates]


def _on_grid(path: str, name: str, entries: list, freq: Frequency | None) -> Series:
    label = f" (series {name!r})" if name else ""
    if len(entries) < 2:
        raise ValueError(f"{path}: a series needs at least two rows{label}")
    try:
        axis = TimeAxis([stamp for _, stamp, _ in entries], freq)
    except ValueError as error:
        raise ValueError(f"{path}: {error}{label}") from None
    origin = entries[0][1]
    positions = []
    for line, stamp, _ in entries:
        try:
            position = axis.position(stamp, origin)
        except TypeError:  # naive and time-zone-aware stamps mixed
            raise ValueError(f"{path}: line {line}: time zones are mixed{label}") from None
        whole = round(position)
        if abs(position - whole) > 1e-6:
            raise ValueError(
                f"{path}: line {line}: this time is not on the {axis.freq.describe()} grid of "
                f"the rows before it{label}; give --freq, or resample the data"
            )
        if positions and whole <= positions[-1]:
            raise ValueError(
                f"{path}: line {line}: times must increase (this one is not after the previous "
                f"row){label}"
            )
        positions.append(whole)
    length = positions[-1] + 1
    values = np.full((length, len(entries[0][2])), np.nan)
    for position, (_, _, row) in zip(positions, entries):
        values[position] = row
    gaps = length - len(entries)
    missing = int(np.isnan(values[:, 0]).sum() + np.isnan(values[:, 1:]).sum())
    for channel in range(values.shape[1]):
        values[:, channel] = _interpolate(values[:, channel], path, label)
    return Series(
        name, values, origin, entries[-1][1], axis, gaps, missing, [e[0] for e in entries]
    )


def _interpolate(column: np.ndarray, path: str, label: str) -> np.ndarray:
    known = ~np.isnan(column)
    if not known.any():
        raise ValueError(f"{path}: a value column holds no numbers{label}")
    if known.all():
        return column
    steps = np.arange(len(column))
    return np.interp(steps, steps[known], column[known])


def describe(path: str, series: list[Series]) -> str:
    """One log line: how many series and steps, the frequency, what was filled."""
    steps = sum(len(s.values) for s in series)
    gaps = sum(s.gaps for s in series)
    missing = sum(s.missing for s in series)
    freq = series[0].axis.freq.describe()
    what = f"{len(series)} series" if len(series) > 1 else "1 series"
    return (
        f"{path}: {what}, {steps:,} {freq} steps; {gaps} missing time stamps inserted, "
        f"{missing} missing values filled by linear interpolation"
    )


def add_data_arguments(parser) -> None:
    """The data flags of ``evaluate`` and ``predict``: as ``train``'s, defaulting to the
    bundle's."""
    group = parser.add_argument_group("data (default: as the bundle was trained)")
    for name, help_text in (
        ("time_column", "the time column"),
        ("target", "the column to forecast"),
        ("covariates", "comma-separated covariate columns"),
        ("series_column", "the column naming each series"),
        ("freq", "the grid (month, D, H, ..., or a number)"),
    ):
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=help_text)


def spec_from_arguments(args, manifest: dict) -> DataSpec:
    """The columns to read: the flags given, else the bundle's training config."""
    trained = DataSpec.from_config(manifest.get("config", {}))
    given = {k: getattr(args, k) for k in DataSpec.__dataclass_fields__}
    return DataSpec(**{k: v if v is not None else getattr(trained, k) for k, v in given.items()})
