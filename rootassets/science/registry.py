"""How a METHOD.md step is declared once: what it reads, what it writes, its parameters, its checks, its version.

A `Step` is pure: `compute(inputs, params)` takes the tables it reads (polars frames, by table
name) and its parameter dataclass, and returns the tables it writes. Everything else is derived
from the declaration: the Dagster asset (`rootassets.defs.steps`), its run config (the dataclass's
fields and defaults), its code version (`code_version`: a hash of the step's source and of every
science function, class and constant it reaches), and the no-orchestration floor
(`benchmarks/floor.py`), which runs the same steps in order.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import importlib
import inspect
import linecache
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from rootassets.science.release_changes import previous_release

SCIENCE = "rootassets.science"
GOOD_ROWS = "NOT quarantined"  # the rows a table's contract accepted
Frames = Mapping[str, pl.DataFrame]


class StepInputError(ValueError):
    """A step's input is unusable (e.g. a user's CSV): the message names the file, row and field."""


@dataclass(frozen=True)
class Read:
    """A table a step reads, as `schema.table`; `good_rows` keeps only the rows its contract accepted;
    `previous_release` reads the newest earlier release present instead (no rows when there is none),
    as input `previous_<table>`."""

    table: str
    good_rows: bool = False
    previous_release: bool = False

    @property
    def schema(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.table.split(".", 1)[1]

    @property
    def input_name(self) -> str:
        return f"previous_{self.name}" if self.previous_release else self.name


@dataclass(frozen=True)
class UserFile:
    """A CSV the user names in the step parameter `parameter`: read by the runner (the step stays pure) and
    passed as input `name`; absent from the inputs when the parameter is empty."""

    name: str
    parameter: str


class TableSource(Protocol):
    """Where a runner (the Dagster asset, the floor) gets a step's inputs."""

    def read(self, schema: str, table: str, release: str, where: str = "") -> pl.DataFrame: ...

    def releases(self, schema: str, table: str) -> list[str]: ...

    def read_csv(self, path: str) -> pl.DataFrame: ...


@dataclass(frozen=True)
class Check:
    """A blocking invariant of one written table: `rule(frame, inputs, params)` -> (passed, metadata)."""

    table: str
    name: str
    description: str
    rule: Callable[[pl.DataFrame, Frames, Any], tuple[bool, dict[str, Any]]]


@dataclass
class StepResult:
    """The tables a step wrote (by table name, without `release`) and what to record about each."""

    tables: dict[str, pl.DataFrame]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)  # objects to keep as files; None: remove the old one
    notes: list[str] = field(default_factory=list)  # warnings worth a line in the run's log


@dataclass(frozen=True)
class Step:
    """One METHOD.md step. Its docstring (the compute function's) is the asset's description."""

    name: str
    compute: Callable[[Frames, Any], StepResult]
    reads: tuple[Read, ...]
    writes: tuple[str, ...]
    parameters: type | None = None
    checks: tuple[Check, ...] = ()
    group: str = "analysis"
    kinds: frozenset[str] = frozenset({"duckdb", "polars"})
    descriptions: Mapping[str, str] = field(default_factory=dict)  # per written table, when several
    artifacts: Mapping[str, str] = field(default_factory=dict)  # asset (`schema.name`) -> file under ROOTASSETS_HOME
    files: tuple[UserFile, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)  # e.g. {"rootassets/optional": "true"}: not in main_job

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.compute.__doc__ or "")

    def description(self, table: str) -> str:
        return self.descriptions.get(table) or self.doc

    def default_parameters(self) -> Any:
        return self.parameters() if self.parameters is not None else None

    def run(self, inputs: Frames, params: Any = None) -> StepResult:
        """Compute on the inputs in canonical row order, so the result never depends on the order the
        rows arrived in (a float sum in another order differs in its last bits)."""
        ordered = {name: canonical_order(frame) for name, frame in inputs.items()}
        result = self.compute(ordered, params if params is not None else self.default_parameters())
        declared = {w.split(".", 1)[1] for w in (*self.writes, *self.artifacts)}
        unknown = (set(result.tables) | set(result.artifacts)) - declared
        if unknown:
            raise ValueError(f"step {self.name} wrote undeclared tables {sorted(unknown)}")
        return result


def gather_inputs(step: Step, params: Any, release: str, source: TableSource) -> dict[str, pl.DataFrame]:
    """The frames `step` reads for `release`, by input name: what every runner passes to `Step.run`."""
    earlier = [r for r in step.reads if r.previous_release]
    before = None
    if earlier:  # one earlier release for all such reads: the newest that every one of their tables holds
        present = set.intersection(*(set(source.releases(r.schema, r.name)) for r in earlier))
        before = previous_release(sorted(present), release)
    inputs: dict[str, pl.DataFrame] = {}
    for r in step.reads:
        where = GOOD_ROWS if r.good_rows else ""
        if r.previous_release:
            frame = source.read(r.schema, r.name, before or release, where)
            inputs[r.input_name] = frame if before else frame.clear()
        else:
            inputs[r.input_name] = source.read(r.schema, r.name, release, where)
    for user_file in step.files:
        path = getattr(params, user_file.parameter, None) if params is not None else None
        if path:
            try:
                inputs[user_file.name] = source.read_csv(path)
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise StepInputError(f"{user_file.parameter} {path}: {exc}") from exc
    return inputs


def canonical_order(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted by all of its sortable columns (nested columns cannot be sort keys)."""
    keys = [name for name, dtype in frame.schema.items() if not dtype.is_nested() and dtype != pl.Object]
    return frame.sort(keys, nulls_last=True, maintain_order=True) if keys and frame.height > 1 else frame


def parameter_metadata(params: Any) -> dict[str, Any]:
    """A parameter dataclass as metadata (tuples as lists)."""
    if params is None or not dataclasses.is_dataclass(params):
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(params).items()}


def code_version(step: Step) -> str:
    """A hash of the source of the step, its checks and parameters, and of every function, class and
    constant of `rootassets.science` they reach: editing any of them changes the version."""
    roots = [r for r in (step.compute, step.parameters, *(c.rule for c in step.checks)) if r is not None]
    return _digest(step.name, roots, (SCIENCE,))


def source_version(name: str, *roots: Any) -> str:
    """The derived code version of an asset outside the registry (raw ingestion, soil water, figures): a
    hash of `roots` (modules, functions, classes) and of every function, class and constant of `rootassets`
    they reach, so that no version string is bumped by hand."""
    return _digest(name, list(roots), ("rootassets.",))


def module_version(module_name: str) -> str:
    """`source_version` of a whole module, called right after its imports: its own source text, and every
    `rootassets` function, class and module it imported (with what they reach)."""
    module = sys.modules[module_name]
    imported = [
        v
        for v in list(vars(module).values())
        if (inspect.isfunction(v) or inspect.isclass(v) or isinstance(v, types.ModuleType))
        and str(getattr(v, "__module__", None) or getattr(v, "__name__", "")).startswith("rootassets.")
    ]
    held = [code for v in list(vars(module).values()) for code in _held_code(v, ("rootassets.",))]
    return _digest(module_name, [inspect.getsource(module), *imported, *held], ("rootassets.",))


def _held_code(value: Any, prefixes: tuple[str, ...], depth: int = 3) -> Iterator[Any]:
    """The functions and classes of `prefixes` that a declaration holds (`FIGURES`, a tuple of `FigureSpec`,
    holds each figure's draw function): code a module reaches through data, not through a name. Only immutable
    holders (tuples, frozensets, frozen dataclasses) are looked into: a dict, list or set may be a cache that
    fills as the process runs, and a version must not depend on what it holds at the moment."""
    if depth == 0 or inspect.isfunction(value) or inspect.isclass(value) or isinstance(value, types.ModuleType):
        return
    if isinstance(value, (tuple, frozenset)):
        items = list(value)
    elif _is_frozen_dataclass(value) and _within(type(value), prefixes):
        yield type(value)
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return
    for item in items:
        if (inspect.isfunction(item) or inspect.isclass(item)) and _within(item, prefixes):
            yield item
        else:
            yield from _held_code(item, prefixes, depth - 1)


def _is_frozen_dataclass(value: Any) -> bool:
    params = getattr(type(value), "__dataclass_params__", None)
    return dataclasses.is_dataclass(value) and not isinstance(value, type) and bool(params and params.frozen)


def _digest(name: str, roots: list[Any], prefixes: tuple[str, ...]) -> str:
    reached: dict[str, str] = {}
    for root in roots:
        _reach(root, reached, prefixes)
    digest = hashlib.sha256(name.encode())
    for key in sorted(reached):
        digest.update(f"{key}\n{reached[key]}".encode())
    return digest.hexdigest()[:16]


# Every asset's version walks much the same functions: their source is read once per process (the walk's files
# do not change while a process runs; an edited file is seen by the next process).
_SOURCES: dict[int, tuple[Any, str]] = {}


def source_text(obj: Any) -> str:
    """`inspect.getsource(obj)`, remembered for the process."""
    known = _SOURCES.get(id(obj))
    if known is not None and known[0] is obj:
        return known[1]
    text = _class_source(obj) if inspect.isclass(obj) else None
    if text is None:
        text = inspect.getsource(obj)
    _SOURCES[id(obj)] = (obj, text)
    return text


def _class_source(cls: type) -> str | None:
    """`inspect.getsource(cls)` without parsing the class's module again for every class (inspect does):
    the module's class start lines come from one parse, then the block is cut as inspect cuts it. None when
    the class is not found that way (inspect then decides)."""
    try:
        file = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not file:
        return None
    lines = linecache.getlines(file)
    start = _class_starts(file, len(lines)).get(cls.__qualname__)
    return "".join(inspect.getblock(lines[start:])) if start is not None and lines else None


STATEMENT_HOLDERS = (ast.stmt, ast.excepthandler, ast.match_case)


@functools.cache
def _class_starts(file: str, n_lines: int) -> dict[str, int]:
    """{qualname: first line (0-based; its first decorator's)} of every class in `file`, as inspect's class
    finder numbers them (the first class of a qualname wins)."""
    starts: dict[str, int] = {}

    def visit(node: ast.AST, stack: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, [*stack, child.name, "<locals>"])
            elif isinstance(child, ast.ClassDef):
                qualname = ".".join([*stack, child.name])
                first = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                starts.setdefault(qualname, first - 1)
                visit(child, [*stack, child.name])
            elif isinstance(child, STATEMENT_HOLDERS):  # a class is a statement: expressions hold none
                visit(child, stack)

    visit(ast.parse("".join(linecache.getlines(file))), [])
    return starts


def _reach(obj: Any, reached: dict[str, str], prefixes: tuple[str, ...]) -> None:
    if isinstance(obj, str):  # a source text
        reached.setdefault(hashlib.sha256(obj.encode()).hexdigest(), obj)
        return
    if isinstance(obj, types.ModuleType):
        if obj.__name__ in reached:
            return
        reached[obj.__name__] = source_text(obj)
        for member in list(vars(obj).values()):
            if (inspect.isfunction(member) or inspect.isclass(member)) and member.__module__ == obj.__name__:
                _reach(member, reached, prefixes)
        return
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    if name in reached:
        return
    try:
        reached[name] = source_text(obj)
    except (OSError, TypeError):
        reached[name] = repr(obj)
    for module_name, attribute, value in _imported_in_body(reached[name], prefixes):
        if isinstance(value, (types.ModuleType, types.FunctionType, type)):
            _reach(value, reached, prefixes)
        elif _is_constant(value):
            reached.setdefault(f"{module_name}.{attribute}", _constant_text(module_name, attribute, value))
    namespace = _namespace(obj)
    for code in _codes(obj):
        for ref in _names(code):
            value = namespace.get(ref)
            if isinstance(value, types.ModuleType):
                if value.__name__.startswith(prefixes):
                    reached.setdefault(value.__name__, source_text(value))
            elif (inspect.isfunction(value) or inspect.isclass(value)) and _within(value, prefixes):
                _reach(value, reached, prefixes)
            elif ref in namespace and _is_constant(value) and _within_module(namespace, prefixes):
                module_name = str(namespace.get("__name__"))
                reached.setdefault(f"{module_name}.{ref}", _constant_text(module_name, ref, value))
                for code in _held_code(value, prefixes):
                    _reach(code, reached, prefixes)


def _namespace(obj: Any) -> dict[str, Any]:
    if inspect.isfunction(obj):
        return obj.__globals__
    module = sys.modules.get(getattr(obj, "__module__", ""))
    return vars(module) if module is not None else {}


def _codes(obj: Any) -> Iterator[types.CodeType]:
    if inspect.isfunction(obj):
        yield obj.__code__
    elif inspect.isclass(obj):
        for member in vars(obj).values():
            function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if inspect.isfunction(function):
                yield function.__code__


def _imported_in_body(source: str, prefixes: tuple[str, ...]) -> tuple[tuple[str, str, Any], ...]:
    """What a function or class imports inside its body from `prefixes` (`from rootassets.science import
    figures` in a function that imports lazily), as (module, name, value): such names are not in its module's
    namespace."""
    if not any(f"from {p}" in source or f"import {p}" in source for p in prefixes):
        return ()  # nothing it imports can be from `prefixes`: no need to parse it
    return _body_imports(source, prefixes)


@functools.cache
def _body_imports(source: str, prefixes: tuple[str, ...]) -> tuple[tuple[str, str, Any], ...]:
    return tuple(_parse_body_imports(source, prefixes))


def _parse_body_imports(source: str, prefixes: tuple[str, ...]) -> Iterator[tuple[str, str, Any]]:
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(prefixes):
                    module_name, _, attribute = alias.name.rpartition(".")
                    yield module_name, attribute, importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(prefixes):
            module_name = node.module or ""
            module = importlib.import_module(module_name)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if value is None:  # a submodule not imported by its package
                    value = importlib.import_module(f"{module_name}.{alias.name}")
                yield module_name, alias.name, value


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _within(value: Any, prefixes: tuple[str, ...]) -> bool:
    return str(getattr(value, "__module__", "")).startswith(prefixes)


def _within_module(namespace: Mapping[str, Any], prefixes: tuple[str, ...]) -> bool:
    return str(namespace.get("__name__", "")).startswith(prefixes)


def _constant_text(module_name: str, name: str, value: Any) -> str:
    """What a module-level constant contributes to a version: a mutable container (dict, list, set) by the
    source of its assignment, since its content may change while the process runs (a cache, a registry of
    what was seen) and a version is of the code, not of the process's state; any other value by its repr."""
    if isinstance(value, (dict, list, set)):
        for _ in range(10):  # follow `from module import name` to where the name is assigned
            module = sys.modules.get(module_name)
            file = getattr(module, "__file__", None) if module is not None else None
            found = _assignments(file, len(linecache.getlines(file))).get(name) if file else None
            if isinstance(found, str):
                return found
            if found is None:
                break
            module_name, name = found
    return _canonical(value)


@functools.cache
def _assignments(file: str, n_lines: int) -> dict[str, str | tuple[str, str]]:
    """{name: source of its assignment, or (module, name) it was imported as} of each module-level name bound
    once in `file` (a name bound several times, or in a branch, is left to its value)."""
    lines = linecache.getlines(file)
    found: dict[str, str | tuple[str, str]] = {}
    seen: set[str] = set()

    def bind(name: str, what: str | tuple[str, str]) -> None:
        if name in seen:
            found.pop(name, None)
        else:
            found[name] = what
        seen.add(name)

    for node in ast.parse("".join(lines)).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bind(target.id, _source_segment(lines, node))
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            bind(node.target.id, _source_segment(lines, node))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                bind(alias.asname or alias.name, (node.module, alias.name))
    return found


def _canonical(value: Any) -> str:
    """A repr that is the same in every process (sets are ordered by string hashes, which vary)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(f"{_canonical(k)}: {_canonical(v)}" for k, v in value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_canonical(v) for v in value) + "]"
    text = repr(value)
    return re.sub(r" at 0x[0-9a-f]+", "", text)  # an object's address differs per process


def _is_constant(value: Any) -> bool:
    return isinstance(value, (int, float, str, bytes, tuple, frozenset, bool)) or (
        isinstance(value, (dict, list, set)) and len(repr(value)) < 10_000
    )


def _source_segment(lines: list[str], node: ast.stmt) -> str:
    """`ast.get_source_segment` of `node` in the source made of `lines` (kept ends), without splitting the whole
    source again for every node as it does (a module's constants took ~0.5 s of each definitions load)."""
    if node.end_lineno is None or node.end_col_offset is None:
        return ""
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    return "".join(
        [
            lines[first].encode()[node.col_offset :].decode(),
            *lines[first + 1 : last],
            lines[last].encode()[: node.end_col_offset].decode(),
        ]
    )
