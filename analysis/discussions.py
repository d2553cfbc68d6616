"""Hand-written discussions (analysis/discussion/<scale>[/<subset>]/<experiment>.md) and the checks that keep them
true: a discussion is shown only beside the numbers it was written from (its fingerprint lines), and every
number it quotes must be printed somewhere in the generated report (unverified)."""
import ast
import hashlib
import math
import operator
import re

import pandas as pd

from analysis.ppo_objectives import COMMON_COLUMNS, REGIMES_COLUMNS
from experiments import grid


DISCUSSION = grid.ROOT / "analysis" / "discussion"


FINGERPRINT = "<!-- written from the table with fingerprint {} -->"


PART_FINGERPRINT = "<!-- written from the table's {} rows with fingerprint {} -->"  # one regime's rows (Table 1)


HEAD = re.compile(r"^<!-- written from the table(?:'s (?P<regime>\S+) rows)? "
                  r"with fingerprint (?P<fingerprint>\w+) -->[ \t]*$", re.MULTILINE)


def table_fingerprint(table):
    """sha256 of a results table's cells as the report prints them (rounded text, not the floats, whose last
    digits may differ between machines), so a discussion can tell whether the numbers under it changed. A table
    with a `text` column prints that, beside the columns that name its row; one without (Table 1) prints its
    numbers: raw scores to units, the rest (normalised scores, ranks, shares, ρ, seed counts) to 2 decimals, ints
    and floats alike (a column of seed counts is read as floats while some cell is empty, as ints once none is)."""
    if "text" in table:
        shown = table[[c for c in ("label", "variant", "minus", "env", "seeds", "text") if c in table]]
    else:
        def printed(column):
            digits = "{:.0f}" if column.name.endswith(" score") else "{:.2f}"
            numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
            return column.astype(float).map(digits.format) if numeric else column
        shown = table.apply(printed)
    return hashlib.sha256(shown.to_csv(index=False).encode()).hexdigest()[:16]


def discussion_parts(text):
    """A discussion file's parts: (regime or None for the whole table, the fingerprint it was written from, its
    text). Each part is headed by a FINGERPRINT line (the whole table) or a PART_FINGERPRINT line (the rows of
    one regime, for Table 1, whose regimes are complete at different times); a file without one is one part
    written from no known numbers."""
    heads = list(HEAD.finditer(text))
    if not heads or heads[0].start() != 0:
        return [(None, None, text)]
    ends = [h.start() for h in heads[1:]] + [len(text)]
    return [(h["regime"], h["fingerprint"], text[h.end():end].strip()) for h, end in zip(heads, ends)]


def discussion(table, scale, experiment, root=DISCUSSION, generated=None):
    """The hand-written discussion of an experiment, each part shown only if it was written from these numbers
    (its fingerprint matches the table's, or its regime's rows') and, given the `generated` text it stands beside,
    if every number it quotes is found there (unverified); a part that is not says it is withheld and why."""
    path = root / scale / f"{experiment}.md"
    if not path.exists():
        return []
    rel = path.relative_to(grid.ROOT) if path.is_relative_to(grid.ROOT) else path
    lines, shown = [], False
    for regime, written_from, text in discussion_parts(path.read_text()):
        # a regime's part is written from its own rows' numbers; the two regimes' comparison is in every row
        rows = table if regime is None else table[table.regime == regime].drop(
            columns=[*REGIMES_COLUMNS, *COMMON_COLUMNS], errors="ignore")
        fingerprint = table_fingerprint(rows)
        missing = unverified(text, generated) if generated is not None else []
        if written_from == fingerprint and len(rows) and not missing:
            lines += [text, ""]  # a working stays, an HTML comment
            shown = True
        elif written_from == fingerprint and len(rows):
            part = f"`{rel}`" if regime is None else f"the {regime} part of `{rel}`"
            lines += [f"**Discussion withheld:** {part} quotes numbers found in none of the tables, readings and "
                      f"per-seed scores of this section: {'; '.join(missing)}.", ""]
        else:
            part, numbers = (f"`{rel}`", "this table's") if regime is None else (
                f"the {regime} part of `{rel}`", f"the table's {regime} rows'")
            lines += [f"**Discussion withheld:** {part} was written from other numbers than {numbers} (fingerprint "
                      f"{fingerprint}); it needs rewriting for these.", ""]
    return ([f"**Discussion** (written by hand from the numbers above, `{rel}`; the tables and readings are "
             "generated, this text is not).", ""] if shown else []) + lines


# A number as prose and tables print it: optional sign (−, - or +), digits with optional thousands commas, optional
# decimals, optional % or ×, not inside a word ("Walker2d", "-v5", "100k" and "1M" are no numbers to check)
NUMBER = re.compile(r"(?<![\w.])(?P<sign>[−+-]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?(?P<unit>%|×)?(?![\w])")
ORDINAL = re.compile(r"(?<![\w.])(?P<int>\d+)(?:st|nd|rd|th)\b")  # "ranked 2nd": the rank 2
WORKING = re.compile(r"\s*<!--\s*=(?P<expression>[^>]*?)-->")  # a derived number shows its working: 21.5%<!-- = ... -->
NOT_QUOTED = [re.compile(p) for p in (
    r"`[^`]*`",  # code
    r"\]\([^)]*\)",  # a link's target
    r"(?:et al\.|[A-Z][a-z]+(?: and [A-Z][a-z]+)?),? \(?(?:19|20)\d\d[a-z]?\)?",  # a citation's year
    r"\((?:19|20)\d\d[a-z]?\)",
    r"§\s*\d+(?:\.\d+)*",  # a section, table, figure or equation of a paper
    r"\b(?:Tables?|Fig(?:ure)?s?\.?|Eqs?\.|Sections?|Algorithm)\s+\d+(?:[.–-]\d+)*",
    r"arXiv:\S+",
)]
SMALL = 10  # whole numbers up to this are counts (3 seeds, 2 of 3 envs), not results, and are not checked


def quoted_numbers(text):
    """The numbers a discussion quotes, as (token, value, decimals, percent, working): each one's printed form, its
    value (a percentage as printed, 13% → 13), decimals, whether it is a percentage, and its working (the
    expression in a following <!-- = ... --> comment, or None). Counts up to SMALL, citations' years, section
    and figure numbers, code and links are left out."""
    workings = {m.start(): m["expression"].strip() for m in WORKING.finditer(text)}  # where the number ends
    text_without = WORKING.sub(lambda m: " " * len(m.group(0)), text)
    for pattern in NOT_QUOTED:
        text_without = pattern.sub(lambda m: " " * len(m.group(0)), text_without)
    numbers = []
    for m in NUMBER.finditer(text_without):
        value, decimals, percent = parse(m)
        if not percent and decimals == 0 and abs(value) <= SMALL and m.end() not in workings:
            continue
        numbers.append((m.group(0), value, decimals, percent, workings.get(m.end())))
    for m in ORDINAL.finditer(text_without):  # a rank, checked however small
        numbers.append((m.group(0), float(m["int"]), 0, False, None))
    return numbers


def parse(m):
    """(value, decimals, is a percentage) of a NUMBER match."""
    value = float(m["int"].replace(",", "") + (m["dec"] or ""))
    return (-value if m["sign"] in "−-" and m["sign"] else value), len(m["dec"] or "") - (1 if m["dec"] else 0), \
        m["unit"] == "%"


def printed_numbers(generated):
    """Every number in generated text (tables, readings, per-seed scores), as (value, decimals, percent)."""
    return {parse(m) for m in NUMBER.finditer(generated)} | {(float(m["int"]), 0, False)
                                                             for m in ORDINAL.finditer(generated)}


def found(value, decimals, percent, printed):
    """Whether a quoted number is one the generated text prints: some printed number with at least as many
    decimals rounds to it, keeping at least two of its significant digits where it has two (3889 of 3889.4, not 1
    of 0.77 nor 0.5 of 0.48), either sign (prose says "below by 0.07" of a printed −0.07). A quoted percentage may
    be a printed percentage or a printed fraction (13% of 0.13); a plain number is never a printed percentage."""
    for v, d, pct in printed:
        if percent and not pct:
            v, d = v * 100, d - 2
        elif pct and not percent:
            continue
        close = any(math.isclose(r, abs(value), abs_tol=10 ** -(decimals + 6)) for r in roundings(abs(v), decimals))
        if d >= decimals and close and digits(value, decimals) >= min(2, digits(v, max(d, 0))):
            return True
    return False


def half_up(value, decimals):
    """value rounded half away from zero, as prose rounds (1202.5 → 1203; Python's round() gives 1202)."""
    scaled = abs(value) * 10 ** decimals
    return math.copysign(math.floor(scaled + 0.5 + 1e-9) / 10 ** decimals, value)


def roundings(value, decimals):
    """The values a printed number may be quoted as with fewer decimals: half up, and also down where it prints a
    half exactly (882.5 may be 882.45 printed to one decimal: its true rounding to units is 882)."""
    scaled = value * 10 ** decimals
    up = half_up(value, decimals)
    return {up, up - 10 ** -decimals} if abs(scaled - math.floor(scaled) - 0.5) < 1e-6 else {up}


def digits(value, decimals):
    """Significant digits of a number printed with `decimals` decimals (0.77 → 2, 3889 → 4, 1 → 1, 0.0 → 1)."""
    return len(str(abs(round(value * 10 ** decimals)))) if round(value * 10 ** decimals) else 1


OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression, printed):
    """The value of a working: + − × / and parentheses over numbers, each of which must be found in the generated
    text (or be a count up to SMALL, or 100); (value, [operands not found]). Nothing else is evaluated."""
    missing = []

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            return OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            text = ast.get_source_segment(source, node)
            decimals = len(text.split(".")[1]) if "." in text else 0
            if not ((decimals == 0 and (abs(node.value) <= SMALL or node.value == 100))
                    or found(float(node.value), decimals, False, printed)):
                missing.append(text)
            return float(node.value)
        raise ValueError(f"not arithmetic: {ast.dump(node)[:60]}")

    source = expression.replace("−", "-").replace("×", "*")
    return walk(ast.parse(source, mode="eval")), missing


def unverified(text, generated):
    """The numbers a discussion quotes that the generated text does not print, each as '<token>' (or, for a derived
    number, '<token> (= <working>: why)'); [] when every one is found. A working evaluates to the number as printed
    (a percentage in percent), either sign, like a quoted number."""
    printed = printed_numbers(generated)
    missing = []
    for token, value, decimals, percent, working in quoted_numbers(text):
        if working is None:
            if not found(value, decimals, percent, printed):
                missing.append(token)
            continue
        try:
            result, absent = evaluate(working, printed)
        except (SyntaxError, ValueError, ZeroDivisionError) as e:
            missing.append(f"{token} (= {working}: {e})")
            continue
        if absent:
            missing.append(f"{token} (= {working}: {', '.join(absent)} not found)")
        elif not math.isclose(half_up(abs(result), decimals), abs(value), abs_tol=10 ** -(decimals + 6)):
            missing.append(f"{token} (= {working} = {result:.{decimals + 2}f})")
    return missing
