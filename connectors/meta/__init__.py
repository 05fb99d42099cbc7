"""Meta Graph API: Facebook Page insights and Instagram account insights, by day.

One call per object and window: ``GET /{api_version}/{object-id}/insights?metric=a,b&period=day
&since=<unix>&until=<unix>`` answers ``data[{name, period, values[{value, end_time}]}]`` for every
metric asked, and ``paging.next`` while a later range remains. ``end_time`` closes the day it
reports (midnight Pacific time, e.g. ``2026-01-02T08:00:00+0000`` for 1 January), so a value's day
is the Pacific day of the instant just before it; Meta's days are Pacific days, which is the
timezone ``check()`` reports for the source.

Limits from Meta's documentation: since/until spans at most 90 days for Page insights
(``max_window_days``), and Instagram's ``follower_count`` returns at most 30 days, so Instagram is
asked in 30-day parts. Meta retires insight metrics often: an unknown one fails the whole batched
call with error 100, so the batch is split in halves until the bad metric stands alone; it fails
its own mapping (``query_errors``) and the others are still written.

Throttling: error codes 4, 17, 32, 613 and the 80000-range business-use-case codes are rate
limits; ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` are read after every answer, and above
90 % the source's next calls, those already queued included, wait (refused as ``RateLimited`` with
``estimated_time_to_regain_access``, by the engine's client) rather than get the app blocked.
Code 190 is a dead token, 10 and 200-299 a missing permission.
"""
