"""Hand-written discussions (analysis/discussion/<scale>[/<subset>]/<experiment>.md) and the checks that keep them
true: a discussion is shown only beside the numbers it was written from (its fingerprint lines), and every
number it quotes must be found in the generated tables and readings (check_numbers)."""
import hashlib
import re

import pandas as pd

from analysis.ppo_objectives import REGIMES_COLUMNS
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


def discussion(table, scale, experiment, root=DISCUSSION):
    """The hand-written discussion of an experiment, each part shown only if it was written from these numbers
    (its fingerprint matches the table's, or its regime's rows'); a part that was not says it is withheld, why,
    and the fingerprint to write it from."""
    path = root / scale / f"{experiment}.md"
    if not path.exists():
        return []
    rel = path.relative_to(grid.ROOT) if path.is_relative_to(grid.ROOT) else path
    lines, shown = [], False
    for regime, written_from, text in discussion_parts(path.read_text()):
        # a regime's part is written from its own rows' numbers; the two regimes' comparison is in every row
        rows = table if regime is None else table[table.regime == regime].drop(columns=list(REGIMES_COLUMNS),
                                                                               errors="ignore")
        fingerprint = table_fingerprint(rows)
        if written_from == fingerprint and len(rows):
            lines += [text, ""]
            shown = True
        else:
            part, numbers = (f"`{rel}`", "this table's") if regime is None else (
                f"the {regime} part of `{rel}`", f"the table's {regime} rows'")
            lines += [f"**Discussion withheld:** {part} was written from other numbers than {numbers} (fingerprint "
                      f"{fingerprint}); it needs rewriting for these.", ""]
    return ([f"**Discussion** (written by hand from the numbers above, `{rel}`; the tables and readings are "
             "generated, this text is not).", ""] if shown else []) + lines
