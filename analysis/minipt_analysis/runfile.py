"""Reading one minipt HDF5 timeline (schema_version 1 to 4, documented in the repository README).

`Run` opens the file once, checks that it is a complete minipt file, reads the root
attributes and the small tables (/steps, /summary) eagerly and the large /events columns
on first use, so that a figure needing five columns never decompresses all eleven.
Every problem with the file (missing, truncated, not minipt, wrong schema) is raised as
`AnalysisError` with a message meant for the person who ran the command.

The reader trusts nothing in the file: the root and /summary attributes it uses must be
scalars of their type, every column one-dimensional, of an integer (or, for flops and
loss, a numeric) type and as long as the other columns of its table, schema_version one
it knows, world_size the number of ranks /steps has rows for (so a damaged world_size
never sizes an allocation), and each column's values in range as it is first read
(ranks in 0..world_size-1, steps >= 0, units and microbatches >= -1, kind and lane codes
with a name, counts >= 0, no event or step ending before it starts). Files the commands
write go through a temp beside the target (`file_written_whole`, `directory_written_whole`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
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
# Columns holding real numbers (any numeric type); every other column must be integers.
FLOAT_COLUMNS = ("flops", "loss")

# Root attributes the analysis uses: each must be a scalar of its type when present.
INT_ATTRIBUTES = ("schema_version", "world_size", "warmup_steps", "clock_error_bound_ns",
                  "model_params", "sim_nodes", "sim_traced_ranks")
FLOAT_ATTRIBUTES = ("peak_tflops", "sim_wall_s")
STRING_ATTRIBUTES = ("minipt_version", "git_revision", "config_toml", "mode", "balance",
                     "backend", "transport", "workload", "name", "hosts", "devices",
                     "created_utc", "sim_cost_model", "run_id")


class AnalysisError(Exception):
    """A problem the user can fix (bad path, not a minipt file); printed without traceback."""


def new_output_directory(directory: str) -> str:
    """The absolute path of `-o DIR` for a command that writes a new directory (as a
    temporary directory beside it, renamed when complete): AnalysisError naming -o when
    DIR already exists or its parent does not."""
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
        if os.path.lexists(directory):
            raise AnalysisError(f"-o {directory}: appeared while it was being written; "
                                "name a new directory")
        os.rename(tmp, directory)
    except AnalysisError as err:  # a file inside: named where it would have been
        shutil.rmtree(tmp, ignore_errors=True)
        raise AnalysisError(str(err).replace(tmp, directory)) from None
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        where = err.filename.replace(tmp, directory) if isinstance(err.filename, str) \
            else directory
        raise AnalysisError(f"-o {directory}: cannot write {where} ({err.strerror or err})") \
            from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def file_written_whole(path: str, what: str = "output", binary: bool = False):
    """Yields a file object to write `path` through: a new temp beside it (opened
    exclusive, O_EXCL, and without following a link, O_NOFOLLOW), flushed to disk and
    renamed over `path` when the block ends without an error, removed when it raises. A
    file already at `path` is replaced only by a complete one, and a link planted at
    `path` is replaced, never written through. An OSError (full disk, no permission, no
    such directory) becomes AnalysisError naming `path`. Binary files are opened for
    reading too (h5py writes through a file object it reads back)."""
    path = os.fspath(path)
    if os.path.isdir(path) and not os.path.islink(path):
        raise AnalysisError(f"{path}: cannot write {what} (is a directory)")
    directory = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as err:
            raise AnalysisError(f"{path}: cannot write {what} ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "w+b" if binary else "w", **({} if binary else
                                                       {"encoding": "utf-8"})) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AnalysisError(f"{path}: cannot write {what} ({err.strerror or err})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
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
    """A group of equal-length 1-D column datasets, read column by column on demand; each
    column's values are checked (`checks`: column -> function giving a problem or None)
    when it is first read."""

    path: str
    group: str
    _file: h5py.File = field(repr=False)
    _cache: dict = field(default_factory=dict, repr=False)
    length: int = 0
    checks: dict = field(default_factory=dict, repr=False)

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self._cache:
            name = f"/{self.group}/{column}"
            if name not in self._file:
                raise AnalysisError(f"{self.path}: not a complete minipt file: missing dataset "
                                    f"{name}")
            dataset = self._file[name]
            if not isinstance(dataset, h5py.Dataset):
                raise AnalysisError(f"{self.path}: {name} is not a dataset")
            _check_column(self.path, name, dataset, self.length)
            try:
                values = dataset[...]
            except (OSError, RuntimeError, ValueError, TypeError) as err:
                raise AnalysisError(f"{self.path}: cannot read {name} ({_first_line(err)}); "
                                    "the file is damaged or truncated") from None
            check = self.checks.get(column)
            problem = check(values) if check is not None and len(values) else None
            if problem:
                raise AnalysisError(f"{self.path}: {name}: {problem}")
            self._cache[column] = values
            # An interval's end is checked against its start once both are read.
            other = {"t_start_ns": "t_end_ns", "t_end_ns": "t_start_ns"}.get(column)
            if other in self._cache:
                start, end = self._cache["t_start_ns"], self._cache["t_end_ns"]
                bad = np.flatnonzero(end < start)
                if len(bad):
                    i = int(bad[0])
                    raise AnalysisError(
                        f"{self.path}: /{self.group}: {len(bad)} row{'s' if len(bad) > 1 else ''}"
                        f" end before they start (first: row {i}, t_start_ns {int(start[i])}, "
                        f"t_end_ns {int(end[i])})")
        return self._cache[column]

    def __len__(self) -> int:
        return self.length


def _check_column(path: str, name: str, dataset, length: int) -> None:
    """A column must be 1-D, as long as its table and of a numeric type (integers unless
    it is one of FLOAT_COLUMNS)."""
    column = name.rsplit("/", 1)[-1]
    if dataset.ndim != 1 or dataset.shape[0] != length:
        raise AnalysisError(f"{path}: {name} has shape {dataset.shape}, expected ({length},) "
                            f"like the other columns of {name.rsplit('/', 1)[0]}")
    kinds = "iuf" if column in FLOAT_COLUMNS else "iu"
    if dataset.dtype.kind not in kinds:
        expected = "numbers" if column in FLOAT_COLUMNS else "integers"
        raise AnalysisError(f"{path}: {name} has type {dataset.dtype}, expected {expected}")


def _in_range(low: int, high: int | None = None, what: str = "value"):
    """A column check: every value in low..high (high None: no upper bound)."""
    def check(values: np.ndarray) -> str | None:
        bad = values < low if high is None else (values < low) | (values > high)
        if not bad.any():
            return None
        i = int(np.flatnonzero(bad)[0])
        allowed = f">= {low}" if high is None else f"in {low}..{high}"
        return (f"{int(bad.sum())} {what}{'s' if bad.sum() > 1 else ''} outside the allowed "
                f"range (first: row {i}, {values[i]}; allowed {allowed})")
    return check


class Run:
    """One minipt run read from its HDF5 timeline."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self.name = os.path.splitext(os.path.basename(self.path))[0]
        if not os.path.exists(self.path):
            raise AnalysisError(f"{self.path}: no such file")
        if os.path.isdir(self.path):
            raise AnalysisError(f"{self.path}: is a directory, expected a minipt .h5 file")
        if not os.path.isfile(self.path):
            raise AnalysisError(f"{self.path}: not a regular file, expected a minipt .h5 file")
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
        except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
            self._file.close()
            raise AnalysisError(f"{self.path}: damaged minipt file ({_first_line(err)})") from None

    # -- header ---------------------------------------------------------------------------
    def _read_header(self) -> None:
        attrs = self._file.attrs
        if "schema_version" not in attrs:
            raise AnalysisError(f"{self.path}: not a minipt timeline (HDF5 file without the "
                                "root attribute schema_version)")
        self.attrs = {key: attrs[key] for key in attrs.keys()}
        version = self.attrs["schema_version"]
        if not _is_scalar(version) or np.asarray(version).dtype.kind not in "iu":
            raise AnalysisError(f"{self.path}: schema_version {_shown(version)} is not an "
                                "integer (this analysis reads schema_version 1 to 4)")
        version = int(np.asarray(version).ravel()[0])
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise AnalysisError(f"{self.path}: schema_version {version} is not supported "
                                f"(this analysis reads schema_version 1 to 4)")
        self._check_attributes(self.attrs, "root attribute", INT_ATTRIBUTES, FLOAT_ATTRIBUTES,
                               STRING_ATTRIBUTES)
        for group in ("events", "steps", "workload"):
            if group not in self._file or not isinstance(self._file[group], h5py.Group):
                raise AnalysisError(f"{self.path}: not a complete minipt file: missing group "
                                    f"/{group}")
        self.events = self._table("events", "t_start_ns", EVENT_COLUMNS)
        self.steps = self._table("steps", "t_start_ns", STEP_COLUMNS)
        self.workload = self._table("workload", "length", WORKLOAD_COLUMNS)
        event_attrs = self._file["events"].attrs
        self.kind_names = self._names(event_attrs, "kind_names", DEFAULT_KIND_NAMES)
        self.lane_names = self._names(event_attrs, "lane_names", DEFAULT_LANE_NAMES)
        # Read the small /steps table now so that a broken file fails at open time, and
        # check world_size against it before anything is sized by world_size.
        self._world_size = self._checked_world_size()
        world = self._world_size
        counts = _in_range(0, what="negative count")
        self.steps.checks.update(step=_in_range(0, what="step"),
                                 rank=_in_range(0, world - 1, "rank"),
                                 tokens=counts, microbatches=counts, compute_ns=counts)
        self.events.checks.update(step=_in_range(0, what="step"),
                                  rank=_in_range(0, world - 1, "rank"),
                                  microbatch=_in_range(-1, what="microbatch"),
                                  unit=_in_range(-1, what="unit"),
                                  kind=_in_range(0, len(self.kind_names) - 1, "kind code"),
                                  lane=_in_range(0, len(self.lane_names) - 1, "lane code"),
                                  bytes=counts, tokens=counts)
        self.workload.checks.update(step=_in_range(0, what="step"),
                                    rank=_in_range(0, world - 1, "rank"),
                                    microbatch=_in_range(-1, what="microbatch"),
                                    length=counts)
        for column in STEP_COLUMNS:
            self.steps[column]
        self.summary = None
        self.summary_per_rank = {}
        if "summary" in self._file:
            group = self._file["summary"]
            summary_attrs = {key: group.attrs[key] for key in group.attrs.keys()}
            self._check_attributes(summary_attrs, "/summary attribute", (),
                                   tuple(summary_attrs), ())
            self.summary = {key: _scalar(value) for key, value in summary_attrs.items()}
            for key in ("utilization", "idle_fraction"):
                if key in group:
                    dataset = group[key]
                    if not isinstance(dataset, h5py.Dataset) or dataset.shape != (world,) or \
                            dataset.dtype.kind not in "iuf":
                        shape = getattr(dataset, "shape", "a group")
                        raise AnalysisError(f"{self.path}: /summary/{key} has shape {shape} "
                                            f"and type {getattr(dataset, 'dtype', '-')}, "
                                            f"expected ({world},) numbers, one per rank")
                    self.summary_per_rank[key] = np.asarray(dataset[...], dtype=np.float64)

    def _check_attributes(self, attrs: dict, where: str, ints, floats, strings) -> None:
        """Each attribute named in ints/floats/strings must be a scalar of that type."""
        for key, value in attrs.items():
            if key in ints or key in floats:
                kinds, expected = ("iu", "an integer") if key in ints else ("iuf", "a number")
                if not _is_scalar(value) or np.asarray(value).dtype.kind not in kinds:
                    raise AnalysisError(f"{self.path}: {where} {key} = {_shown(value)} is not "
                                        f"{expected} (a scalar attribute)")
            elif key in strings:
                if not _is_scalar(value) or not isinstance(_scalar(value), str):
                    raise AnalysisError(f"{self.path}: {where} {key} = {_shown(value)} is not "
                                        "a string (a scalar attribute)")

    def _names(self, attrs, key: str, default) -> tuple[str, ...]:
        value = attrs.get(key)
        if value is not None and (np.asarray(value).ndim > 1 or
                                  np.asarray(value).dtype.kind not in "SUO"):
            raise AnalysisError(f"{self.path}: /events attribute {key} = {_shown(value)} is "
                                "not a list of names")
        names = _names(value, default)
        if not names or len(names) > 256:
            raise AnalysisError(f"{self.path}: /events attribute {key} has {len(names)} "
                                "names, expected 1 to 256")
        return names

    def _checked_world_size(self) -> int:
        """world_size: the root attribute, which must be the number of ranks /steps has
        rows for (every rank writes a row per step), or that number when absent."""
        ranks = self.steps["rank"]
        present = np.unique(ranks)
        size = self.attr("world_size")
        if size is None:
            if not len(present):
                raise AnalysisError(f"{self.path}: no world_size attribute and no /steps rows")
            return int(present.max()) + 1
        size = int(size)
        if size < 1:
            raise AnalysisError(f"{self.path}: root attribute world_size = {size}, expected "
                                ">= 1")
        if len(present) != size or (len(present) and (present[0] != 0 or
                                                       present[-1] != size - 1)):
            have = (f"{len(present)} ranks ({int(present[0])}..{int(present[-1])})"
                    if len(present) else "no ranks")
            raise AnalysisError(f"{self.path}: root attribute world_size = {size} but /steps has"
                                f" rows for {have}; every rank has a row per step")
        return size

    def _table(self, group: str, probe: str, columns) -> Table:
        name = f"/{group}/{probe}"
        if name not in self._file:
            raise AnalysisError(f"{self.path}: not a complete minipt file: missing dataset {name}")
        dataset = self._file[name]
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1:
            raise AnalysisError(f"{self.path}: {name} has shape "
                                f"{getattr(dataset, 'shape', 'of a group')}, expected a column")
        length = int(dataset.shape[0])
        # Shapes and types of every column now (metadata only; the values on first use).
        for column in columns:
            if f"/{group}/{column}" in self._file:
                node = self._file[f"/{group}/{column}"]
                if not isinstance(node, h5py.Dataset):
                    raise AnalysisError(f"{self.path}: /{group}/{column} is not a dataset")
                _check_column(self.path, f"/{group}/{column}", node, length)
        return Table(self.path, group, self._file, length=length)

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
        """The root attribute world_size, checked against /steps at open."""
        return self._world_size

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


# What a run's .h5 and the summary JSON beside it (run.json = true: NAME.json) both carry
# and must agree on when they come from one run: the run identity attribute (when the
# writer sets one), then the provenance both copy from the same place, then the figures.
RUN_IDENTITY_KEYS = ("run_id", "created_utc", "git_revision", "mode", "balance", "world_size",
                     "config_toml")
RUN_FIGURE_KEYS = ("tokens_per_s", "step_ms", "utilization", "tokens", "steps_measured")


def run_identity_problems(run: "Run") -> list[str]:
    """Where NAME.json lies beside NAME.h5 and is a minipt run summary (it has "summary"
    and "h5"): one line when the two come from different runs (concurrent runs with the
    same --out, or a write that failed half-way), naming the fields that differ."""
    path = os.path.splitext(run.path)[0] + ".json"
    if not os.path.isfile(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:
        return [f"{path}: the run's summary JSON is not readable JSON ({_first_line(err)})"]
    if not isinstance(doc, dict) or "summary" not in doc or "h5" not in doc:
        return []  # some other JSON
    differ = []
    for key in RUN_IDENTITY_KEYS:
        mine, theirs = run.attr(key), doc.get(key)
        if mine is None and theirs is None:
            continue
        if mine is None or theirs is None or str(mine) != str(theirs):
            if mine is not None and theirs is not None and key == "config_toml":
                differ.append("config_toml differs")
                continue
            shown = lambda v: "absent" if v is None else repr(str(v)[:40])
            differ.append(f"{key} {shown(theirs)} vs {shown(mine)} in the .h5")
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    for key in RUN_FIGURE_KEYS:
        mine, theirs = (run.summary or {}).get(key), summary.get(key)
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and \
                not math.isclose(float(mine), float(theirs), rel_tol=1e-9, abs_tol=1e-12):
            differ.append(f"summary {key} {theirs:g} vs {mine:g} in the .h5")
    if not differ:
        return []
    return [f"{path} and {run.path} come from different runs: " + "; ".join(differ)]


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


def _is_scalar(value) -> bool:
    """A scalar attribute: a 0-d value (or a 1-element array, as some writers store one)."""
    if isinstance(value, (str, bytes, int, float, np.generic)):
        return True
    array = np.asarray(value)
    return array.ndim == 0 or array.shape == (1,)


def _shown(value) -> str:
    """An attribute's value for a message, short."""
    array = np.asarray(value)
    if array.ndim == 0 or array.size == 1:
        text = repr(_scalar(value))
    else:
        text = f"an array of shape {array.shape}"
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_runs(paths) -> list[Run]:
    return [Run(p) for p in paths]
