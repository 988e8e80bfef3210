"""Statements for the few hot paths (token authentication, the device handshake): compiled from
their querysets once per process and, on PostgreSQL, prepared once per database connection.

Building and compiling a queryset costs the Python side about a millisecond for a simple lookup
and several for the firmware targeting annotation, on every call; and Django binds parameters on
the client, so PostgreSQL plans every statement afresh (the targeting subqueries took it 0.75 ms
of the 0.9 ms the statement cost). A `Statement` keeps the compiled SQL with a named argument
wherever a sentinel value stood, and runs it as `EXECUTE` of a statement prepared on the
connection, with the constants written into the prepared statement and each argument sent once.

A pooler in transaction mode (PgBouncer) does not keep SQL-level prepared statements; behind one
these hot paths need a session-mode pool.
"""

import re
import weakref
from dataclasses import dataclass, field

from django.db import connection


_MARKS = re.compile(r"%%|%s|\{(\w+)\}")


class Arg(str):
    """Where a statement's parameter is a value given per call, by this name."""


@dataclass(frozen=True)
class Statement:
    name: str  # of the prepared statement: unique in the project
    sql: str  # with %s placeholders, as Django's cursors take them
    params: tuple  # constants, and an Arg wherever a value is given per call
    # column index -> (functions, expression): the backend's conversions of the values read, as
    # the ORM applies them (SQLite gives datetimes as text and booleans as integers).
    converters: dict = field(default_factory=dict)
    # The per-call arguments, each once, in the order of their first appearance: only these are
    # sent with each EXECUTE (constants are written into the prepared statement).
    arg_names: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "arg_names", tuple(dict.fromkeys(p for p in self.params if isinstance(p, Arg))))

    @classmethod
    def from_queryset(cls, name: str, queryset, **sentinels) -> "Statement":
        """The queryset's SQL, with each sentinel value (which must appear exactly once among the
        compiled parameters) standing for the argument of its keyword's name."""
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        params = list(params)
        for arg, sentinel in sentinels.items():
            positions = [index for index, param in enumerate(params) if param == sentinel]
            if len(positions) != 1:
                raise RuntimeError(f"{name}: {arg}'s sentinel appears {len(positions)} times in the compiled query.")
            params[positions[0]] = Arg(arg)
        converters = compiler.get_converters([column for column, _sql, _alias in compiler.select])
        return cls(name, sql, tuple(params), converters)

    @classmethod
    def from_template(cls, name: str, template: str, embedded: "Statement | None" = None) -> "Statement":
        """A statement from SQL with `{arg}` wherever a per-call argument goes and `{embedded}`
        where a compiled statement's SQL goes (its placeholders keep their parameters)."""
        if embedded is not None:
            template = template.replace("{embedded}", embedded.sql)
        inner = iter(embedded.params if embedded is not None else ())
        params = []

        def mark(match):
            if match.group(0) == "%%":
                return "%%"
            params.append(Arg(match.group(1)) if match.group(1) else next(inner))
            return "%s"

        return cls(name, _MARKS.sub(mark, template), tuple(params))

    def execute(self, cursor, **values) -> None:
        params = [values[param] if isinstance(param, Arg) else param for param in self.params]
        if connection.vendor != "postgresql":
            cursor.execute(self.sql, params)  # sqlite3 keeps its own cache of compiled statements
            return
        _prepare(self)
        names = self.arg_names
        cursor.execute(f"EXECUTE {self.name}({', '.join(['%s'] * len(names))})", [values[name] for name in names])



    def fetchone(self, cursor) -> list | None:
        row = cursor.fetchone()
        if row is None or not self.converters:
            return row
        row = list(row)
        for index, (functions, expression) in self.converters.items():
            for function in functions:
                row[index] = function(row[index], expression, connection)
        return row


# psycopg connection -> names of the statements prepared on it. A new connection (after a
# restart, or CONN_MAX_AGE) is a new key, so nothing is assumed about a session we did not set up.
_prepared_on: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepare(statement: Statement) -> None:
    from psycopg import sql

    raw = connection.connection
    names = _prepared_on.setdefault(raw, set())
    if statement.name in names:
        return
    numbers = {name: number for number, name in enumerate(statement.arg_names, start=1)}
    placeholders = tuple(
        f"${numbers[param]}" if isinstance(param, Arg) else sql.Literal(param).as_string(raw)
        for param in statement.params
    )
    # Session setup, like Django's own time zone statement: not logged, so the statements a
    # request sends (and the tests that count them) do not depend on which request came first.
    with connection.wrap_database_errors:
        raw.execute(f"PREPARE {statement.name} AS {statement.sql % placeholders}")
    names.add(statement.name)

