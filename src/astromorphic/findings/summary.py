"""Every claim of the paper in one table, and the short summary at the top of the page, computed from it."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from astromorphic.findings.base import Findings, markdown_table
from astromorphic.findings.claims import Claim, divergence_claim, lm_gap_claim, ordering_pairs, ordering_claims
from astromorphic.findings.claims import FAMILIES, TABLE1_FAMILY
from astromorphic.findings.speed import speed_claims
from astromorphic.findings.stats import NO_CLAIM, verdict_word


def claims(f: Findings) -> list[Claim]:
    """Every claim; on anything but real data the verdict is withheld."""
    out = ordering_claims(f) + speed_claims(f)
    out += [c for c in (lm_gap_claim(f), divergence_claim(f)) if c is not None]
    return [replace(c, verdict=NO_CLAIM, size="") for c in out] if f.synthetic else out


def claims_section(f: Findings) -> str:
    rows = [[c.claim, c.paper, c.ours, c.resolution, c.p_adjusted, c.verdict if f.synthetic else f"**{c.verdict}**",
             c.size or "-"] for c in claims(f)]
    return markdown_table(rows, ["Claim", "Paper", "Ours", "Half-width; MDE (80 % power)", "Holm p", "Verdict",
                                 "Size beside the verdict"])


def claims_table(f: Findings) -> pd.DataFrame:
    """One row per verdict the summary counts (``family``, ``claim``, ``verdict``, ``size``): each claim of
    :func:`claims`, and each Table I pair (the Table I claims count by pair)."""
    rows = [dict(family=c.family, claim=c.claim, verdict=c.verdict, size=c.size, pair=False) for c in claims(f)]
    for task in f.tasks():
        for p in ordering_pairs(f, task):
            rows.append(dict(family=TABLE1_FAMILY, claim=f"{p.cmp.a.label} vs {p.cmp.b.label} ({task})",
                             verdict=NO_CLAIM if f.synthetic else p.verdict, size="" if f.synthetic else p.size,
                             pair=True))
    return pd.DataFrame(rows, columns=["family", "claim", "verdict", "size", "pair"])


def summary_section(table: pd.DataFrame) -> str:
    """The short list at the top of the page, from a claims table (:func:`claims_table`): how many comparisons of
    each family reached each verdict, then one line per claim, claim -> verdict (and the size beside it)."""
    if table.empty:
        return "_No claim of the paper was compared in this configuration._\n"
    lines = []
    counted = table[table["pair"] | (table["family"] != TABLE1_FAMILY)]
    order = [f for f in FAMILIES if f in set(counted["family"])] + sorted(set(counted["family"]) - set(FAMILIES))
    for family in order:
        rows = counted[counted["family"] == family]
        words = [verdict_word(v) for v in rows["verdict"]]
        counts = ", ".join(f"{w} {words.count(w)}" for w in dict.fromkeys(words))
        what = "pairs" if rows["pair"].any() else "claims"
        lines.append(f"- {family} ({what}: {len(rows)}): {counts}.")
    for _, r in table[~table["pair"]].iterrows():
        size = f" ({r['size']})" if isinstance(r["size"], str) and r["size"] else ""
        lines.append(f"- {r['claim']} → **{r['verdict']}**{size}")
    return "\n".join(lines) + "\n"
