"""Reading one minipt HDF5 timeline (schema_version 1 to 4, documented in the repository README).

`Run` opens the file once, checks that it is a complete minipt file, reads the root
attributes and the small tables (/steps, /summary) eagerly and the large /events columns
on first use, so that a figure needing five columns never decompresses all eleven.
Every problem with the file (missing, truncated, not minipt, wrong schema) is raised as
`AnalysisError` with a message meant for the person who ran the command.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import h5py
import numpy as np

# Versions this analysis reads: 2 added the event kind replica_reduce (hybrid sharding), 3
# the /summary attributes exposed_communication_fraction and waiting_fraction, 4 the root
# attributes of the per-peer-class transports and the replica reduction.
SCHEMA_VERSION = 4
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3, 4)

# Fallback names when a file lacks the /events kind_names / lane_names attributes; the
# order is the code order of src/trace/events.hpp.
DEFAULT_KIND_NAMES = (
    "forward", "backward", "recompute", "gather", "reduce_scatter", "get", "accumulate",
    "wait", "barrier", "optimizer", "allreduce", "accumulate_grad", "replica_reduce",
)
DEFAULT_LANE_NAMES = ("compute", "pull", "push")

EVENT_COLUMNS = ("rank", "step", "microbatch", "unit", "kind", "lane", "t_start_ns",
                 "t_end_ns", "bytes", "tokens", "flops")
STEP_COLUMNS = ("step", "rank", "tokens", "microbatches", "t_start_ns", "t_end_ns",
                "compute_ns", "loss")
WORKLOAD_COLUMNS = ("step", "rank", "microbatch", "sequence", "length")


class AnalysisError(Exception):
    """A problem the user can fix (bad path, not a minipt file); printed without traceback."""


def new_output_directory(directory: str) -> str:
    """The absolute path of `-o DIR` for a command that writes a new directory (as a
    temporary directory beside it, renamed when complete): AnalysisError naming -o when
    DIR already exists or its parent does not."""
    import os

    directory = os.path.abspath(directory)
    if os.path.lexists(directory):
        raise AnalysisError(f"-o {directory}: already exists; name a new directory")
    parent = os.path.dirname(directory)
    if not os.path.isdir(parent):
        raise AnalysisError(f"-o {directory}: parent directory {parent} does not exist")
    return directory


@contextlib.contextmanager
def directory_written_whole(directory: str):
    """Yields a new temporary directory beside `directory` (the absolute path
    new_output_directory gave) to write into; renamed to `directory` when the block ends
    without an error, removed with what it holds when it raises."""
    try:
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.", suffix=".tmp",
                               dir=os.path.dirname(directory))
    except OSError as err:
        raise AnalysisError(f"-o {directory}: cannot write there ({err.strerror})") from None
    try:
        yield tmp
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _names(value, default) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if isinstance(value, (str, bytes)):
        # Stored as one string: accept comma or semicolon separated lists.
        text = _text(value)
        sep = ";" if ";" in text else ","
        return tuple(part.strip() for part in text.split(sep))
    return tuple(_text(v) for v in np.asarray(value).ravel())


@dataclass
class Table:
    """A group of equal-length 1-D column datasets, read column by column on demand."""

    path: str
    group: str
    _file: h5py.File = field(repr=False)
    _cache: dict = field(default_factory=dict, repr=False)
    length: int = 0

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self._cache:
            name = f"/{self.group}/{column}"
            if name not in self._file:
                raise AnalysisError(f"{self.path}: not a complete minipt file: missing dataset "
                                    f"{name}")
            try:
                values = self._file[name][...]
            except (OSError, RuntimeError) as err:
                raise AnalysisError(f"{self.path}: cannot read {name} ({err}); the file is "
                                    "damaged or truncated") from None
            if values.ndim != 1 or values.shape[0] != self.length:
                raise AnalysisError(f"{self.path}: {name} has shape {values.shape}, expected "
                                    f"({self.length},) like the other columns of /{self.group}")
            self._cache[column] = values
        return self._cache[column]

    def __len__(self) -> int:
        return self.length


class Run:
    """One minipt run read from its HDF5 timeline."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self.name = os.path.splitext(os.path.basename(self.path))[0]
        if not os.path.exists(self.path):
            raise AnalysisError(f"{self.path}: no such file")
        if os.path.isdir(self.path):
            raise AnalysisError(f"{self.path}: is a directory, expected a minipt .h5 file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise AnalysisError(f"{self.path}: not a readable HDF5 file ({_first_line(err)}); "
                                "a run that crashed leaves NAME.h5.tmp, never a half NAME.h5")
        try:
            self._read_header()
        except AnalysisError:
            self._file.close()
            raise
        except (OSError, RuntimeError, KeyError, ValueError) as err:
            self._file.close()
            raise AnalysisError(f"{self.path}: damaged minipt file ({_first_line(err)})") from None

    # -- header ---------------------------------------------------------------------------
    def _read_header(self) -> None:
        attrs = self._file.attrs
        if "schema_version" not in attrs:
            raise AnalysisError(f"{self.path}: not a minipt timeline (HDF5 file without the "
                                "root attribute schema_version)")
        version = int(np.asarray(attrs["schema_version"]).ravel()[0])
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise AnalysisError(f"{self.path}: schema_version {version} is not supported "
                                f"(this analysis reads schema_version 1 to 4)")
        self.attrs = {key: attrs[key] for key in attrs.keys()}
        for group in ("events", "steps", "workload"):
            if group not in self._file or not isinstance(self._file[group], h5py.Group):
                raise AnalysisError(f"{self.path}: not a complete minipt file: missing group "
                                    f"/{group}")
        self.events = self._table("events", "t_start_ns")
        self.steps = self._table("steps", "t_start_ns")
        self.workload = self._table("workload", "length")
        event_attrs = self._file["events"].attrs
        self.kind_names = _names(event_attrs.get("kind_names"), DEFAULT_KIND_NAMES)
        self.lane_names = _names(event_attrs.get("lane_names"), DEFAULT_LANE_NAMES)
        self.summary = None
        self.summary_per_rank = {}
        if "summary" in self._file:
            group = self._file["summary"]
            self.summary = {key: _scalar(group.attrs[key]) for key in group.attrs.keys()}
            for key in ("utilization", "idle_fraction"):
                if key in group:
                    self.summary_per_rank[key] = np.asarray(group[key][...], dtype=np.float64)
        # Read the small /steps table now so that a broken file fails at open time.
        for column in STEP_COLUMNS:
            self.steps[column]

    def _table(self, group: str, probe: str) -> Table:
        name = f"/{group}/{probe}"
        if name not in self._file:
            raise AnalysisError(f"{self.path}: not a complete minipt file: missing dataset {name}")
        return Table(self.path, group, self._file, length=int(self._file[name].shape[0]))

    # -- attributes -------------------------------------------------------------------------
    def attr(self, key: str, default=None):
        if key not in self.attrs:
            return default
        value = self.attrs[key]
        if isinstance(value, (bytes, str)) or (isinstance(value, np.ndarray) and value.dtype.kind
                                               in "SUO"):
            return _text(value)
        return _scalar(value)

    @property
    def mode(self) -> str:
        return self.attr("mode", "?")

    @property
    def balance(self) -> str:
        return self.attr("balance", "?")

    @property
    def backend(self) -> str:
        return self.attr("backend", "?")

    @property
    def workload_name(self) -> str:
        return self.attr("workload", "?")

    @property
    def world_size(self) -> int:
        size = self.attr("world_size")
        if size is not None:
            return int(size)
        ranks = self.steps["rank"]
        return int(ranks.max()) + 1 if len(ranks) else 0

    @property
    def warmup_steps(self) -> int:
        return int(self.attr("warmup_steps", 0))

    @property
    def peak_tflops(self) -> float:
        return float(self.attr("peak_tflops", float("nan")))

    @property
    def devices(self) -> list[str]:
        text = self.attr("devices", "")
        return [d for d in text.split(";") if d] if text else []

    @property
    def device_label(self) -> str:
        """Device names for titles: '4× NVIDIA H100' or 'A, B' when ranks differ."""
        devices = self.devices
        if not devices:
            return "device ?"
        unique = list(dict.fromkeys(devices))
        if len(unique) == 1:
            return f"{len(devices)}× {unique[0]}" if len(devices) > 1 else unique[0]
        return ", ".join(f"{devices.count(d)}× {d}" for d in unique)

    @property
    def config(self) -> dict | None:
        """The resolved configuration parsed from config_toml, or None if absent/unparseable."""
        text = self.attr("config_toml")
        if not text:
            return None
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            return _simple_toml(text)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None

    def title(self) -> str:
        """One line naming the run for figure titles."""
        balance = f", balance {self.balance}" if self.balance not in ("?", "none") else ""
        # The run's name (its file's stem) when it says more than the mode.
        head = self.mode if self.name == self.mode else f"{self.name}: {self.mode}"
        devices = set(self.devices)
        if devices == {"emulated"}:  # the emulated backend: no device, a modelled peak
            where = f"emulated compute at {self.peak_tflops:g} TFLOP/s peak per rank"
        else:
            where = self.device_label
        ranks = f"{self.world_size} rank{'s' if self.world_size != 1 else ''}"
        return f"{head}{balance}, {ranks}, workload {self.workload_name}, {where}"

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _simple_toml(text: str) -> dict:
    """Tables of `key = scalar` lines, enough for minipt's resolved configuration where
    Python lacks tomllib (< 3.11); values it cannot read are kept as their text."""
    config: dict = {}
    table = config
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            table = config
            for part in line.strip("[]").split("."):
                table = table.setdefault(part.strip(), {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if value in ("true", "false"):
            parsed = value == "true"
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            parsed = value[1:-1]
        else:
            try:
                parsed = int(value)
            except ValueError:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value
        table[key.strip()] = parsed
    return config


def _scalar(value):
    array = np.asarray(value)
    if array.dtype.kind in "SUO":
        return _text(array.ravel()[0]) if array.size else ""
    if array.size == 1:
        return array.ravel()[0].item()
    return array


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_runs(paths) -> list[Run]:
    return [Run(p) for p in paths]
