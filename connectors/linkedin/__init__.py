"""LinkedIn Community Management API: an organization page's followers and share statistics.

Three endpoints under ``https://api.linkedin.com/rest`` (``config.base_url`` replaces that root),
every call carrying ``LinkedIn-Version: YYYYMM`` and ``X-Restli-Protocol-Version: 2.0.0``:

- ``GET /organizationalEntityFollowerStatistics?q=organizationalEntity&organizationalEntity=<URN>
  &timeIntervals=(timeRange:(start:<ms>,end:<ms>),timeGranularityType:DAY)`` gives one element a
  day with ``followerGains{organicFollowerGain, paidFollowerGain}`` (data from 12 months back to
  about two days ago; a gain can be negative when more members unfollow than follow);
- ``GET /organizationalEntityShareStatistics`` with the same parameters gives one element a day
  with ``totalShareStatistics{impressionCount, clickCount, likeCount, commentCount, shareCount,
  engagement}`` (a rolling 12 months; ``engagement`` is a rate, so it is not summed);
- ``GET /networkSizes/<URN>?edgeType=COMPANY_FOLLOWED_BY_MEMBER`` gives ``firstDegreeSize``, the
  follower count now (a snapshot: LinkedIn keeps no history of it).

Rest.li 2.0 wants the parentheses, colons and commas of ``timeIntervals`` as they are and the URN
percent-encoded, which a generic query encoder gets wrong (a 400), so the query string is built
here. Time ranges are epoch milliseconds; days are UTC days.

Access tokens live 60 days. With a refresh token (approved Marketing partners only) the engine
refreshes through ``https://www.linkedin.com/oauth/v2/accessToken`` and stores the new token;
without one, the source shows a "re-authorize" notice a week before ``expires_at``, and a 401
afterwards says to re-authorize.
"""

from connectors.linkedin.connector import LinkedInConnector

__all__ = ["LinkedInConnector"]
