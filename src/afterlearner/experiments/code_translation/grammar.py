"""A grammar of small integer functions, written both in JavaScript (the source) and Python (the target).

Why: computational accuracy needs reference translations that are right by construction and unit
inputs to compare behaviour on. Each program is generated once as a tree and rendered in both
languages, so the pair is a correct translation; its Python rendering is the reference, run on
:func:`unit_inputs` to give the expected outputs (it is code we generated, so it runs in-process).

The grammar covers what a translator must really rewrite: ``let`` declarations, ``===``/``!==``,
``&&``/``||``/``!``, ``Math.max``/``Math.min``/``Math.abs``, the conditional operator (whose
operands Python puts in another order), C-style ``for`` loops (→ ``range``), braces (→ indentation),
``if``/``else`` and early returns. Only operations with identical semantics in both languages on
small integers are used (no division, no modulo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from afterlearner.experiments.code_translation.tokens import javascript_tokens, python_tokens

PARAMS = ("a", "b", "c")
LOCALS = ("x", "y", "z")
LOOP_VARS = ("i", "j")
#: Largest integer literal.
MAX_LITERAL = 9
#: Longest program kept, in tokens of either language, and largest output on the unit inputs.
MAX_TOKENS = 56
MAX_OUTPUT = 10**6


@dataclass(frozen=True)
class Program:
    """One generated function: its JavaScript source, its Python reference, and its arity."""

    javascript: str
    python: str
    arity: int


class _Writer:
    """Renders statements into JavaScript and Python lines at the current depth."""

    def __init__(self) -> None:
        self.js: list[str] = []
        self.py: list[str] = []
        self.depth = 0

    def line(self, js: str, py: str | None) -> None:
        self.js.append("  " * (self.depth + 1) + js)
        if py is not None:
            self.py.append("    " * (self.depth + 1) + py)


class _Generator:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def choice(self, options: list) -> object:
        return options[int(self.rng.integers(len(options)))]

    # -- expressions: each returns (javascript, python) ---------------------------------------
    def atom(self, names: list[str]) -> tuple[str, str]:
        if self.rng.random() < 0.3:
            value = str(int(self.rng.integers(0, MAX_LITERAL + 1)))
            return value, value
        name = str(self.choice(names))
        return name, name

    def expr(self, names: list[str], depth: int = 0) -> tuple[str, str]:
        roll = self.rng.random()
        if depth >= 2 or roll < 0.3:
            return self.atom(names)
        if roll < 0.7:
            op = str(self.choice(["+", "-", "*", "+", "-"]))
            (lj, lp) = self.expr(names, depth + 1)
            # a product's right operand is a literal: values then grow at most geometrically in loops
            rj, rp = (str(int(self.rng.integers(0, 4))),) * 2 if op == "*" else self.expr(names, depth + 1)
            left_j, left_p = (f"({lj})", f"({lp})") if " " in lj and op == "*" else (lj, lp)
            right_j, right_p = (f"({rj})", f"({rp})") if " " in rj else (rj, rp)
            return f"{left_j} {op} {right_j}", f"{left_p} {op} {right_p}"
        if roll < 0.88:
            function = str(self.choice(["max", "min", "abs"]))
            if function == "abs":
                ej, ep = self.expr(names, depth + 1)
                return f"Math.abs({ej})", f"abs({ep})"
            (aj, ap), (bj, bp) = self.expr(names, depth + 1), self.expr(names, depth + 1)
            return f"Math.{function}({aj}, {bj})", f"{function}({ap}, {bp})"
        cj, cp = self.cond(names, depth + 1)
        (aj, ap), (bj, bp) = self.atom(names), self.atom(names)
        return f"({cj} ? {aj} : {bj})", f"({ap} if {cp} else {bp})"

    def comparison(self, names: list[str], depth: int) -> tuple[str, str]:
        js_op, py_op = self.choice(
            [("<", "<"), (">", ">"), ("<=", "<="), (">=", ">="), ("===", "=="), ("!==", "!=")]
        )
        (lj, lp), (rj, rp) = self.expr(names, depth + 1), self.atom(names)
        return f"{lj} {js_op} {rj}", f"{lp} {py_op} {rp}"

    def cond(self, names: list[str], depth: int = 0) -> tuple[str, str]:
        roll = self.rng.random()
        if depth >= 2 or roll < 0.6:
            return self.comparison(names, depth)
        if roll < 0.85:
            js_op, py_op = self.choice([("&&", "and"), ("||", "or")])
            (lj, lp), (rj, rp) = self.comparison(names, depth + 1), self.comparison(names, depth + 1)
            return f"{lj} {js_op} {rj}", f"{lp} {py_op} {rp}"
        cj, cp = self.comparison(names, depth + 1)
        return f"!({cj})", f"not ({cp})"

    # -- statements ------------------------------------------------------------------------------
    def block(self, out: _Writer, names: list[str], assignable: list[str], loops: int, size: int) -> None:
        for _ in range(size):
            roll = self.rng.random()
            if roll < 0.45 or not assignable:
                target = str(self.choice(assignable)) if assignable else None
                if target is None:
                    return
                op = str(self.choice(["=", "+=", "-=", "+=", "*="]))
                ej, ep = self.expr(names) if op != "*=" else (str(int(self.rng.integers(2, 4))),) * 2
                out.line(f"{target} {op} {ej};", f"{target} {op} {ep}")
            elif roll < 0.7:
                cj, cp = self.cond(names)
                out.line(f"if ({cj}) {{", f"if {cp}:")
                out.depth += 1
                self.block(out, names, assignable, loops, 1 + int(self.rng.integers(2)))
                out.depth -= 1
                if self.rng.random() < 0.4:
                    out.line("} else {", "else:")
                    out.depth += 1
                    self.block(out, names, assignable, loops, 1)
                    out.depth -= 1
                out.line("}", None)
            elif roll < 0.85 and loops < len(LOOP_VARS):
                var = LOOP_VARS[loops]
                bound = self.choice([n for n in names if n in PARAMS] + [str(int(self.rng.integers(1, 5)))])
                out.line(f"for (let {var} = 0; {var} < {bound}; {var}++) {{", f"for {var} in range({bound}):")
                out.depth += 1
                self.block(out, names + [var], assignable, loops + 1, 1 + int(self.rng.integers(2)))
                out.depth -= 1
                out.line("}", None)
            else:
                cj, cp = self.cond(names)
                ej, ep = self.expr(names)
                out.line(f"if ({cj}) {{", f"if {cp}:")
                out.depth += 1
                out.line(f"return {ej};", f"return {ep}")
                out.depth -= 1
                out.line("}", None)

    def program(self) -> Program:
        arity = 1 + int(self.rng.integers(3))
        params = list(PARAMS[:arity])
        out = _Writer()
        names = list(params)
        # parameters are never assigned: they bound the loops, which JavaScript re-reads every iteration
        for local in LOCALS[: int(self.rng.integers(1, 3))]:
            ej, ep = self.expr(names)
            out.line(f"let {local} = {ej};", f"{local} = {ep}")
            names.append(local)
        self.block(out, names, [n for n in names if n in LOCALS], 0, 1 + int(self.rng.integers(2)))
        ej, ep = self.expr(names)
        out.line(f"return {ej};", f"return {ep}")
        signature = ", ".join(params)
        javascript = "\n".join([f"function f({signature}) {{", *out.js, "}"])
        python = "\n".join([f"def f({signature}):", *out.py])
        return Program(javascript, python, arity)


def _acceptable(program: Program) -> bool:
    """Short enough for the small model, and with outputs of moderate size on the unit inputs."""
    if (
        len(python_tokens(program.python)) > MAX_TOKENS
        or len(javascript_tokens(program.javascript)) > MAX_TOKENS
    ):
        return False
    return all(abs(value) <= MAX_OUTPUT for value in reference_outputs(program, unit_inputs(program.arity)))


def generate(count: int, seed: int) -> list[Program]:
    """``count`` distinct acceptable programs from ``seed`` (duplicates and long ones are skipped)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    generator = _Generator(np.random.default_rng(seed))
    seen: set[str] = set()
    programs: list[Program] = []
    while len(programs) < count:
        program = generator.program()
        if program.javascript not in seen and _acceptable(program):
            seen.add(program.javascript)
            programs.append(program)
    return programs


def unit_inputs(arity: int, count: int = 6, seed: int = 0) -> list[list[int]]:
    """Fixed unit-test inputs for a function of ``arity`` integer arguments (small, some negative)."""
    rng = np.random.default_rng([seed, arity])
    return [[int(v) for v in rng.integers(-4, 7, size=arity)] for _ in range(count)]


def reference_outputs(program: Program, inputs: list[list[int]]) -> list[int]:
    """Outputs of the reference Python on ``inputs`` (our own generated code, run in-process)."""
    namespace: dict = {}
    exec(compile(program.python, "<reference>", "exec"), namespace)  # noqa: S102 - generated by us
    return [namespace["f"](*args) for args in inputs]
