"""Audience and campaign figures from Mailchimp's Marketing API 3.0.

Each endpoint is asked once per fetch, however many mappings need it:

- ``GET /lists/{list_id}/activity``: the audience's daily aggregates (``subs``, ``unsubs``,
  ``emails_sent``, ``unique_opens``, ``recipient_clicks``) for up to the previous 180 days,
  paged with ``count``/``offset`` and trimmed with ``fields``. Mailchimp lists the newest day
  first, so paging stops at the first page that reaches before the window. Days Mailchimp no
  longer keeps are not invented: a warning says from which day the figures start, or, for an
  audience created after the window's start (its ``date_created``), that it has no older days.
- ``GET /lists/{list_id}``: ``stats.member_count``, the audience's size now (a snapshot), and
  ``date_created`` when the activity starts after the window.
- ``GET /reports``: one report per sent campaign, asked for the window's send times
  (``since_send_time``/``before_send_time``), paged to ``total_items``. A campaign's figures
  land on the day of its ``send_time`` in the source's timezone, and only campaigns sent to
  ``list_id`` count. The ``campaign_title``/``campaign_type`` filters are applied here, per
  mapping, so mappings with different filters still share the pages.

The API root is ``https://{dc}.api.mailchimp.com/3.0``: ``dc`` is the API key's suffix
(``…-us21``) or, with an OAuth access token, ``data_center``; ``base_url`` replaces the root.
Errors are problem documents (``type``, ``title``, ``status``, ``detail``, ``instance``) whose
title and detail make the message. Mailchimp lets an account hold 10 connections at once;
the cap the client enforces (``max_concurrency``) is per source, so two sources on one account
can together go past it, and Mailchimp's 429 then slows them like any rate limit.
"""

from connectors.mailchimp.connector import MailchimpConnector
from connectors.mailchimp.models import MAX_CONNECTIONS, MailchimpConfig, MailchimpCredentials

__all__ = ["MAX_CONNECTIONS", "MailchimpConfig", "MailchimpConnector", "MailchimpCredentials"]
