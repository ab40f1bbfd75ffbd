"""The croniter side of tests/croniter_diff.rs.

Reads one JSON object a line on stdin: {"expr": ..., "from": RFC 3339, "tz": IANA zone,
"count": N}. Writes one JSON object a line on stdout, in the same order: {"times": [...]}
with the next N fire times strictly after "from", formatted as `runner calendar` prints
them (RFC 3339 with offset, whole seconds), or {"error": "..."}.

croniter is asked for crontab semantics: day_or=True (day-of-month OR day-of-week when both
are restricted) and implement_cron_bug=True (a field starting with `*` does not count as
restricted, as in Vixie cron and cronie). A 6-field expression has its seconds first, as
runner reads it, so second_at_beginning=True.

`--version` prints the croniter version and exits: the test uses it to check the venv.
"""

import datetime
import importlib.metadata
import json
import sys
from zoneinfo import ZoneInfo

from croniter import croniter


def next_times(expr, start, count):
    six = len(expr.split()) == 6
    it = croniter(
        expr,
        start,
        ret_type=datetime.datetime,
        day_or=True,
        implement_cron_bug=True,
        second_at_beginning=six,
    )
    return [it.get_next().isoformat() for _ in range(count)]


def main():
    if sys.argv[1:] == ["--version"]:
        print(importlib.metadata.version("croniter"))
        return
    for line in sys.stdin:
        case = json.loads(line)
        start = datetime.datetime.fromisoformat(case["from"].replace("Z", "+00:00"))
        start = start.astimezone(ZoneInfo(case["tz"]))
        try:
            out = {"times": next_times(case["expr"], start, case["count"])}
        except Exception as e:  # every failure is an answer to compare, not a crash
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out), flush=False)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
