"""The legacy routing rules that produced the history, with exact propensities.

``probabilities`` gives the full distribution over destinations for each lead; ``sample`` draws
from exactly that distribution and logs the probability of what it drew, which is what
off-policy evaluation needs.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.simulation.calendar import EPOCH
from models.simulation.catalog import SALES_TEAMS, TEAM_ACTIONS, TEAMS
from models.simulation.features import LeadView, lead_view
from models.simulation.names import labels, sequential_ids

QUEUE, NURTURE = TEAMS.index("queue"), TEAMS.index("nurture")
ENTERPRISE, MID_MARKET, SMB = (TEAMS.index(t) for t in SALES_TEAMS)

# (rule, what it checks, team) in the order the legacy rules are evaluated.
RULES: tuple[tuple[str, str, int], ...] = (
    ("missing-data", "country or industry missing", QUEUE),
    ("strategic-account", "known account", ENTERPRISE),
    ("large-company", "employees >= 1000", ENTERPRISE),
    ("low-engagement", "no demo request, no pricing view and under 3 web visits", NURTURE),
    ("mid-size", "employees >= 200", MID_MARKET),
    ("small-engaged", "engaged company under 200 employees", SMB),
)


class LoggingPolicy:
    """Legacy rules with uniform exploration over teams and uniform reps within a team.

    Args:
        reps: the reps frame (``rep_id``, ``team``, ``active``).
        absences: ``rep_id``, ``starts_on``, ``ends_on`` (inclusive).
        exploration: share of traffic whose team is drawn uniformly over all teams.

    A rep is eligible for a lead if active and not absent on the UTC date of its ``created_at``.
    A sales team with no eligible rep that day passes its probability to the queue.
    """

    name = "legacy-rules"
    version = 1

    def __init__(self, reps: pl.DataFrame, absences: pl.DataFrame, exploration: float) -> None:
        if not 0.0 <= exploration <= 1.0:
            raise ValueError(f"exploration: must be within [0, 1], got {exploration}")
        self.exploration = exploration
        self.reps = reps
        self.absences = absences
        self._rep_ids = reps["rep_id"].to_numpy()
        self._rep_team = np.array([TEAMS.index(t) for t in reps["team"]])
        self._active = reps["active"].to_numpy().astype(bool)
        self._absent: dict[int, list[tuple[int, int]]] = {}
        index = {rep_id: i for i, rep_id in enumerate(self._rep_ids)}
        for rep_id, starts_on, ends_on in absences.select("rep_id", "starts_on", "ends_on").iter_rows():
            # Absences as UTC day numbers, comparable with a lead's creation day.
            span = ((starts_on - EPOCH).days, (ends_on - EPOCH).days)
            self._absent.setdefault(index[rep_id], []).append(span)

    # -- the rules ----------------------------------------------------------------------------

    def rule(self, leads: pl.DataFrame) -> np.ndarray:
        """Index into :data:`RULES` of the rule that fires for each lead."""
        return self._rule(lead_view(leads))

    def _rule(self, view: LeadView) -> np.ndarray:
        employees = np.nan_to_num(view.employees, nan=0.0)
        engaged = view.demo_requested | (view.pricing_page_views >= 1) | (view.web_visits >= 3)
        return np.select(
            [
                view.country_missing | (view.industry < 0),
                view.has_account,
                employees >= 1_000,
                ~engaged,
                employees >= 200,
            ],
            [0, 1, 2, 3, 4],
            5,
        )

    def eligible(self, day: np.ndarray) -> np.ndarray:
        """Boolean ``(len(day), n_reps)``: who may take a lead created on each UTC day number."""
        ok = np.broadcast_to(self._active, (day.size, self._active.size)).copy()
        for rep, spans in self._absent.items():
            for first, last in spans:
                ok[(day >= first) & (day <= last), rep] = False
        return ok

    def _team_probabilities(self, view: LeadView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(team) per lead × team after fallbacks, eligible reps per lead × team, eligibility)."""
        rule_team = np.array([r[2] for r in RULES])[self._rule(view)]
        share = np.full((view.size, len(TEAMS)), self.exploration / len(TEAMS))
        share[np.arange(view.size), rule_team] += 1.0 - self.exploration
        days, inverse = np.unique(view.day, return_inverse=True)
        eligible_by_day = self.eligible(days)
        counts_by_day = np.stack(
            [eligible_by_day[:, self._rep_team == t].sum(axis=1) for t in range(len(TEAMS))], axis=1
        )
        counts = counts_by_day[inverse]
        # Nobody in the team that day: the legacy router drops the lead in the queue.
        empty = np.zeros_like(share, dtype=bool)
        empty[:, : len(SALES_TEAMS)] = counts[:, : len(SALES_TEAMS)] == 0
        share[:, QUEUE] += (share * empty).sum(axis=1)
        share[empty] = 0.0
        return share, counts, eligible_by_day[inverse]

    # -- public API ---------------------------------------------------------------------------

    def probabilities(self, leads: pl.DataFrame) -> pl.DataFrame:
        """Every destination with nonzero probability, per lead.

        Returns:
            ``lead_id``, ``team``, ``rep_id`` (null for nurture and queue), ``probability``;
            probabilities sum to 1 per lead. Rows follow the leads, then team and rep order.
        """
        view = lead_view(leads)
        share, counts, eligible = self._team_probabilities(view)
        lead_rows, rep_cols = np.nonzero(eligible)
        team_of = self._rep_team[rep_cols]
        rep_prob = share[lead_rows, team_of] / np.maximum(counts[lead_rows, team_of], 1)
        keep = rep_prob > 0
        lead_rows, rep_cols, rep_prob = lead_rows[keep], rep_cols[keep], rep_prob[keep]
        team_rows, team_cols = np.nonzero(share[:, [NURTURE, QUEUE]] > 0)
        team_codes = np.array([NURTURE, QUEUE])[team_cols]
        rows = np.concatenate([lead_rows, team_rows])
        team = np.concatenate([self._rep_team[rep_cols], team_codes])
        rank = np.concatenate([rep_cols, len(self._rep_ids) + team_cols])
        order = np.lexsort((rank, rows))
        rep_codes = np.concatenate([rep_cols, np.full(team_rows.size, -1)])
        return pl.DataFrame(
            {
                "lead_id": view.lead_id.gather(rows[order]),
                "team": labels(TEAMS, team[order]),
                "rep_id": labels(self._rep_ids, rep_codes[order]),
                "probability": np.concatenate([rep_prob, share[team_rows, team_codes]])[order],
            }
        )

    def probability_of(self, leads: pl.DataFrame, decisions: pl.DataFrame) -> np.ndarray:
        """The probability this policy gives each lead's decision (joined on ``lead_id``; 0 if never)."""
        chosen = leads.select(pl.col("lead_id").cast(pl.String)).join(
            decisions.select(pl.col("lead_id").cast(pl.String), "team", pl.col("rep_id").cast(pl.String)),
            on="lead_id",
            how="left",
            maintain_order="left",
        )
        table = self.probabilities(leads)
        matched = chosen.join(
            table, on=["lead_id", "team", "rep_id"], how="left", nulls_equal=True, maintain_order="left"
        )
        return matched["probability"].fill_null(0.0).to_numpy()

    def sample(self, leads: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        """Route every lead by drawing from :meth:`probabilities`, logging the propensity.

        Returns:
            The decisions frame: ``decision_id``, ``lead_id``, ``decided_at``, ``team``,
            ``rep_id``, ``action``, ``policy``, ``policy_version``, ``propensity``, ``reasons``.
        """
        view = lead_view(leads)
        n = view.size
        rule = self._rule(view)
        share, counts, eligible = self._team_probabilities(view)
        explore = rng.random(n) < self.exploration
        drawn_team = rng.integers(0, len(TEAMS), n)
        pick = rng.random(n)
        delay_ms = rng.integers(1_000, 8_000, n)
        intended = np.where(explore, drawn_team, np.array([r[2] for r in RULES])[rule])
        is_sales = intended < len(SALES_TEAMS)
        k = counts[np.arange(n), intended]
        team = np.where(is_sales & (k == 0), QUEUE, intended)
        rep = np.full(n, -1)
        for t in range(len(SALES_TEAMS)):
            at = np.flatnonzero(team == t)
            if at.size == 0:
                continue
            members = np.flatnonzero(self._rep_team == t)
            open_seats = eligible[np.ix_(at, members)]
            nth = np.floor(pick[at] * open_seats.sum(axis=1)).astype(np.int64)
            # The nth eligible member: first column where the running count of eligible exceeds nth.
            column = (np.cumsum(open_seats, axis=1) > nth[:, None]).argmax(axis=1)
            rep[at] = members[column]
        k_final = counts[np.arange(n), team]
        propensity = share[np.arange(n), team] / np.where(team < len(SALES_TEAMS), k_final, 1)
        created = leads["created_at"].cast(pl.Datetime("us", "UTC"))
        frame = pl.DataFrame(
            {
                "lead_id": view.lead_id,
                "decided_at": created + pl.Series(delay_ms * 1_000).cast(pl.Duration("us")),
                "team": labels(TEAMS, team),
                "rep_id": labels(self._rep_ids, rep),
                "propensity": propensity,
                "_rule": labels([r[0] for r in RULES], rule),
                "_detail": labels([r[1] for r in RULES], rule),
                "_explore": explore,
                "_rule_team": labels(TEAMS, np.array([r[2] for r in RULES])[rule]),
                "_eligible": k_final,
                "_fallback": is_sales & (k == 0),
            }
        )
        reasons = _json_object(
            {
                "rule": pl.col("_rule"),
                "detail": pl.col("_detail"),
                "exploration": pl.col("_explore"),
                "rule_team": pl.col("_rule_team"),
                "eligible_reps": pl.col("_eligible"),
                "team_unstaffed": pl.col("_fallback"),
            }
        )
        return frame.select(
            sequential_ids("D", n, 7).alias("decision_id"),
            "lead_id",
            "decided_at",
            "team",
            "rep_id",
            pl.col("team").replace_strict(TEAM_ACTIONS, return_dtype=pl.String).alias("action"),
            pl.lit(self.name).alias("policy"),
            pl.lit(self.version, dtype=pl.Int64).alias("policy_version"),
            "propensity",
            reasons.alias("reasons"),
        )


def _json_object(fields: dict[str, pl.Expr]) -> pl.Expr:
    """A JSON object per row as text, keys in the given order (values are plain, no escaping)."""
    parts: list[pl.Expr] = []
    for i, (key, value) in enumerate(fields.items()):
        parts.append(pl.lit(("{" if i == 0 else ",") + f'"{key}":'))
        text = value.cast(pl.String)
        parts.append(pl.lit('"') + text + pl.lit('"') if key in ("rule", "detail", "rule_team") else text)
    parts.append(pl.lit("}"))
    return pl.concat_str(parts)
