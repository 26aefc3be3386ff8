"""What `POST /v1/outcomes` accepts: a configured event, a value within its bounds, and a
`ts` in the window around its decision and now (`serving.yaml` `outcomes:`).

The window is ``[decided − skew, decided + max age] ∩ [now − max age, now + skew]``, with
``decided`` the time in the signed decision id; for an id this deployment did not issue,
only the second interval applies. Timestamps are compared as they are, never converted
or shifted, so a date at the edge of the calendar (year 1 with a positive offset) is
rejected like any other, not overflowed into a server error.

>>> import datetime as dt
>>> from configs.schema import OutcomeSettings
>>> rules = OutcomeRules(OutcomeSettings())
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> rules.problems("revenue", 19.5, noon, decided=noon, now=noon)
[]
>>> rules.problems("revenue", 1e308, noon, decided=noon, now=noon)
[('value', 'a number from 0 to 100000 for event revenue')]
>>> rules.problems("clicks", 1.0, noon, decided=noon, now=noon)
[('event', "one of ['conversion', 'revenue'] (serving.yaml outcomes.events)")]
>>> ancient = dt.datetime.fromisoformat("0001-01-01T00:00:00+05:00")
>>> [field for field, _ in rules.problems("conversion", 1.0, ancient, decided=noon, now=noon)]
['ts']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from configs.schema import OutcomeSettings


@dataclass(frozen=True)
class OutcomeRules:
    settings: OutcomeSettings

    def window(
        self, decided: dt.datetime | None, now: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime]:
        """The earliest and latest `ts` accepted for a decision issued at `decided`."""
        skew = dt.timedelta(seconds=self.settings.max_clock_skew_s)
        age = dt.timedelta(days=self.settings.max_age_days)
        earliest, latest = now - age, now + skew
        if decided is not None:
            earliest, latest = max(earliest, decided - skew), min(latest, decided + age)
        return earliest, latest

    def problems(
        self,
        event: str,
        value: float,
        ts: dt.datetime,
        decided: dt.datetime | None,
        now: dt.datetime,
    ) -> list[tuple[str, str]]:
        """(field, what was expected) for each part of the outcome that is not accepted."""
        problems = []
        bounds = self.settings.events.get(event)
        if bounds is None:
            known = sorted(self.settings.events)
            problems.append(("event", f"one of {known} (serving.yaml outcomes.events)"))
        elif not bounds.min <= value <= bounds.max:
            problems.append(
                ("value", f"a number from {bounds.min:g} to {bounds.max:g} for event {event}")
            )
        if ts.tzinfo is None or ts.utcoffset() is None:
            problems.append(("ts", "a timestamp with zone"))
        else:
            earliest, latest = self.window(decided, now)
            if not earliest <= ts <= latest:
                problems.append(("ts", self._window_text(earliest, latest, decided)))
        return problems

    def _window_text(
        self, earliest: dt.datetime, latest: dt.datetime, decided: dt.datetime | None
    ) -> str:
        skew, days = self.settings.max_clock_skew_s, self.settings.max_age_days
        if decided is None:
            rule = f"at most {days:g} days before now and {skew:g} s after it"
        else:
            rule = (
                f"between its decision and now, give or take {skew:g} s of clock skew, and "
                f"at most {days:g} days after the decision and before now"
            )
        return f"a time from {earliest.isoformat()} to {latest.isoformat()}: {rule}"
