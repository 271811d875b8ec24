"""Stored templates filled with a send's variables: a sandboxed, bounded Jinja2.

Pure: a template's source and the send's ``variables`` in, text out, or an :class:`ApiError`.
Every way a template can misbehave is refused as a value, never a hang, a leak or a crash:

- **Sandbox.** :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no ``_``-attributes, no
  Python internals, no mutation of lists and dicts), with no loader (no file is ever read),
  no globals but a small ``range``; attributes and items give data only (a method is an
  error, so no Python repr with a memory address reaches the output), and calls are allowed
  only to ``range``, ``loop.cycle`` and ``loop.changed``: ``{{ ''.__class__ }}``,
  ``{{ cycler.__init__.__globals__ }}`` and ``{{ name.center(10**9) }}`` are errors.
- **A small language.** ``{{ name }}``, ``{{ user.name }}``, ``{{ items[0] }}``, the filters of
  :data:`FILTERS`, Jinja's tests, ``{% if %}``, ``{% for %}`` (not ``recursive``), ``{% set x =
  … %}``, comments and ``{% raw %}``. Anything else (``include``, ``import``, ``extends``,
  macros, blocks, ``{% filter %}``, ``{% autoescape %}``…) is refused when the template is
  stored (:func:`check`) and again when it is rendered.
- **Bounded work.** Every loop draws from a per-render budget (:data:`MAX_WORK` units: one per
  node of the loop's body per iteration), so nested loops cannot run for minutes; ``range``
  gives at most :data:`MAX_RANGE` numbers; ``*``, ``+``, ``**`` and ``~`` refuse results past
  the output limit (or, for numbers, past :data:`MAX_INT_BITS` bits) before computing them;
  ``%`` string formatting is refused; the output is counted as it is produced and the render
  stops at ``max_output`` characters.
- **Escaping.** The HTML body is rendered with autoescape: every variable value is
  HTML-escaped (``<`` becomes ``&lt;``), unless the template marks it ``|safe``. The subject
  and the text part are not HTML and are rendered without escaping.
- **Missing values render empty**, also along a path (``{{ user.name }}`` without ``user``).

Compiled templates are kept in a small LRU keyed by their source, so a template sent again and
again is parsed once.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, soft_str

from mailpulse.core.errors import ApiError

#: work units one render may spend in loops (one per body node per iteration)
MAX_WORK: Final = 200_000
#: most numbers ``range`` gives
MAX_RANGE: Final = 10_000
#: largest integer (in bits) arithmetic may produce
MAX_INT_BITS: Final = 4096
#: the default output limit, in characters
MAX_OUTPUT: Final = 5 * 1024 * 1024


@dataclass(frozen=True)
class StoredTemplate:
    """A template as the submit pipeline reads it (store/templates.py)."""

    real_id: int
    body: str


@dataclass(frozen=True)
class Filled:
    """A template send after rendering: its subject, HTML body and text part."""

    subject: str
    html: str
    text: str | None


class TemplateError(Exception):
    """Why a template cannot be stored or rendered; the message is for the caller."""


# -- the language ------------------------------------------------------------------------------

# Nodes a template may contain. Everything else is refused with the tag's name.
_ALLOWED_NODES: Final = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.If,
    nodes.CondExpr,
    nodes.For,
    nodes.Assign,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.Concat,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.Call,
)

_TAG_NAMES: Final = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Extends: "extends",
    nodes.Block: "block",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.FilterBlock: "filter",
    nodes.AssignBlock: "set … endset",
    nodes.With: "with",
    nodes.ScopedEvalContextModifier: "autoescape",
    nodes.Scope: "autoescape",
    nodes.EvalContextModifier: "autoescape",
    nodes.NSRef: "namespace",
}


def _checked_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    """``join`` with its result's size checked before it is built (a long separator times many
    items would otherwise be gigabytes)."""
    if attribute is not None:
        raise SecurityError("join by attribute is not allowed")
    items = [soft_str(item) for item in value]
    separator = soft_str(d)
    _check_size(sum(map(len, items)) + len(separator) * max(len(items) - 1, 0))
    if isinstance(separator, Markup) or any(isinstance(item, Markup) for item in items):
        return Markup(separator).join(items)
    return separator.join(items)


# The filters a template may use: each takes time and memory linear in its input.
_SAFE_FILTERS: Final = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "items",
    "last",
    "length",
    "lower",
    "round",
    "safe",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
)
FILTERS: Final = (*_SAFE_FILTERS, "join")

# The per-render state: work left and output limit (a ContextVar: renders in several threads,
# or several renders in one, never share it).
_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("template_budget")


def _check_size(size: int) -> None:
    budget = _budget.get(None)
    limit = budget[1] if budget is not None else MAX_OUTPUT
    if size > limit:
        raise SecurityError(f"the result would be longer than {limit} characters")


def _spend(units: int) -> None:
    budget = _budget.get(None)
    if budget is None:
        return
    budget[0] -= units
    if budget[0] < 0:
        raise SecurityError("the template does too much work (loops too long)")


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() gives at most {MAX_RANGE} numbers")
    return numbers


class _Function:
    """A function a template may call (``range``, ``loop.cycle``, ``loop.changed``). Printed, it
    says only "function": a Python repr would show a memory address."""

    __slots__ = ("_function",)

    def __init__(self, function: Any) -> None:
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return "function"

    __str__ = __repr__


_LOOP_FUNCTIONS: Final = frozenset({"cycle", "changed"})


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, narrowed: no loader, few globals, few filters, calls to an allowlist,
    every arithmetic operator checked, loops and concatenation bounded."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            loader=None,
            autoescape=html,
            undefined=ChainableUndefined,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
        )
        self.globals.clear()
        self.globals["range"] = _Function(_bounded_range)
        chosen = {name: self.filters[name] for name in _SAFE_FILTERS}
        self.filters.clear()
        self.filters.update(chosen, join=_checked_join)
        self.html = html

    # -- calls: an allowlist ---------------------------------------------------------------
    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(obj, _Function):
            return True
        owner = getattr(obj, "__self__", None)
        return owner is self and getattr(obj, "__name__", "") in ("bounded_iter", "bounded_concat")

    # -- attributes and items: data only; a method is reachable only as loop.cycle/changed ---
    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._data(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._data(obj, argument, super().getitem(obj, argument))

    @staticmethod
    def _data(obj: Any, name: Any, value: Any) -> Any:
        if isinstance(value, Undefined) or not callable(value):
            return value
        if isinstance(obj, LoopContext) and name in _LOOP_FUNCTIONS:
            return _Function(value)
        raise SecurityError("methods are not available in templates")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if not __self.is_safe_callable(__obj):
            raise SecurityError("calling functions or methods is not allowed in templates")
        return __context.call(__obj, *args, **kwargs)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    # -- operators: sizes checked before the result exists -------------------------------
    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed")
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_product(left, right)
        elif operator == "+":
            _check_sum(left, right)
        return self.binop_table[operator](left, right)

    # -- what the AST transform calls ------------------------------------------------------
    def bounded_iter(self, iterable: Any, weight: int) -> Iterator[Any]:
        for item in iterable:
            _spend(weight)
            yield item

    def bounded_concat(self, *values: Any) -> str:
        texts = [soft_str(value) for value in values]
        _check_size(sum(map(len, texts)))
        return markup_join(texts) if self.html else str_join(texts)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent):
        if exponent > 0 and max(abs(base).bit_length(), 1) * exponent > MAX_INT_BITS:
            raise SecurityError("the number would be too large")
    elif isinstance(base, int | float) and isinstance(exponent, int | float):
        return  # floats overflow to an error, not to a huge number
    else:
        raise SecurityError("** is for numbers")


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise SecurityError("the number would be too large")
        return
    for times, sequence in ((left, right), (right, left)):
        if _is_int(times) and isinstance(sequence, str | list | tuple):
            _check_size(len(sequence) * max(times, 0))


def _check_sum(left: Any, right: Any) -> None:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _check_size(len(left) + len(right))


# -- parsing and checking ----------------------------------------------------------------------


def _nodes_in(node: nodes.Node) -> int:
    return 1 + sum(_nodes_in(child) for child in node.iter_child_nodes())


def _check_tree(tree: nodes.Template) -> None:
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.For) and node.recursive:
            raise TemplateError("recursive loops are not allowed")
        if not isinstance(node, _ALLOWED_NODES):
            tag = _TAG_NAMES.get(type(node), type(node).__name__)
            line = f" (line {node.lineno})" if node.lineno else ""
            raise TemplateError(f"'{tag}' is not allowed in templates{line}")
        if isinstance(node, nodes.Call | nodes.Filter | nodes.Test) and (
            node.dyn_args is not None or node.dyn_kwargs is not None
        ):
            raise TemplateError(f"*args and **kwargs are not allowed (line {node.lineno})")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            raise TemplateError(f"the filter '{node.name}' is not allowed (line {node.lineno})")


def _bound(tree: nodes.Template) -> nodes.Template:
    """Loops draw from the render's budget; ``~`` checks its size (rewritten in place)."""
    for loop in list(tree.find_all(nodes.For)):
        weight = sum(_nodes_in(child) for child in (*loop.body, *loop.else_)) + (
            _nodes_in(loop.test) if loop.test is not None else 0
        )
        loop.iter = nodes.Call(
            nodes.EnvironmentAttribute("bounded_iter", lineno=loop.lineno),
            [loop.iter, nodes.Const(max(weight, 1), lineno=loop.lineno)],
            [],
            None,
            None,
            lineno=loop.lineno,
        )
    for concat in list(tree.find_all(nodes.Concat)):
        call = nodes.Call(
            nodes.EnvironmentAttribute("bounded_concat", lineno=concat.lineno),
            list(concat.nodes),
            [],
            None,
            None,
            lineno=concat.lineno,
        )
        concat.nodes = [call]  # a Concat of one node: the call's checked result
    return tree


_HTML = _Environment(html=True)
_PLAIN = _Environment(html=False)


def _parse(environment: _Environment, source: str) -> nodes.Template:
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.message} (line {exc.lineno})") from None
    _check_tree(tree)
    return tree


def check(source: str) -> None:
    """Raise :class:`TemplateError` when ``source`` is not a template this service renders."""
    _compiled(True, source)


@functools.lru_cache(maxsize=64)
def _compiled(html: bool, source: str) -> Any:
    environment = _HTML if html else _PLAIN
    try:
        return environment.from_string(_bound(_parse(environment, source)))
    except (RecursionError, SyntaxError):
        # Deep nesting exhausts the checks' recursion, or Python's compiler (20 nested loops
        # are "too many statically nested blocks", 100 nested ifs too many indentation levels).
        raise TemplateError("the template is nested too deeply") from None


def render(
    source: str, variables: dict[str, Any], *, html: bool, max_output: int = MAX_OUTPUT
) -> str:
    """``source`` filled with ``variables``; :class:`TemplateError` when it cannot be."""
    template = _compiled(html, source)
    token = _budget.set([MAX_WORK, max_output])
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(_plain_variables(variables)):
            size += len(chunk)
            if size > max_output:
                raise TemplateError(f"the rendered template is longer than {max_output} characters")
            out.append(chunk)
        return "".join(out)
    except TemplateError:
        raise
    except SecurityError as exc:
        raise TemplateError(str(exc)) from None
    except UndefinedError as exc:
        raise TemplateError(exc.message or "a value is missing") from None
    except RecursionError:
        raise TemplateError("the template is nested too deeply") from None
    except (ArithmeticError, TypeError, ValueError, LookupError, MemoryError) as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    finally:
        _budget.reset(token)


def _plain_variables(variables: dict[str, Any]) -> dict[str, Any]:
    """The send's variables as the template sees them: keys as strings. Values are JSON data
    (str, numbers, bools, None, lists, dicts), which the sandbox handles as data."""
    return {str(key): value for key, value in variables.items()}


def fill(
    body: str,
    subject: str,
    text: str | None,
    variables: dict[str, Any],
    *,
    max_output: int = MAX_OUTPUT,
) -> Filled:
    """A template send rendered: the stored body as the HTML part (variables escaped), the
    subject and the request's text part (if any) without escaping."""
    return Filled(
        subject=render(subject, variables, html=False, max_output=max_output),
        html=render(body, variables, html=True, max_output=max_output),
        text=None if text is None else render(text, variables, html=False, max_output=max_output),
    )


def render_error(exc: TemplateError) -> ApiError:
    return ApiError(422, 422, f"Template could not be rendered: {exc}")


__all__ = [
    "FILTERS",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_WORK",
    "Filled",
    "StoredTemplate",
    "TemplateError",
    "check",
    "fill",
    "render",
    "render_error",
]
