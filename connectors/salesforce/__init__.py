"""Salesforce: daily record counts and sums from SOQL aggregate queries over the REST API.

A metric is ``<SObject>.count`` or ``<SObject>.sum`` for any object API name (``Lead``,
``Opportunity``, ``Campaign__c``). Queries on the same object, date field and filters share one
statement, so ``COUNT(Id)`` and every ``SUM(field)`` asked of them come back in one call::

    GET {instance_url}/services/data/{api_version}/query?q=
      SELECT DAY_ONLY(convertTimezone(CreatedDate)) d, COUNT(Id) n, SUM(Amount) s0
      FROM Opportunity WHERE CreatedDate >= ... AND CreatedDate < ... AND (StageName = 'Won')
      GROUP BY DAY_ONLY(convertTimezone(CreatedDate))

``convertTimezone()`` makes a datetime field's day the API user's day (SOQL returns datetimes in
UTC otherwise); a date field (``CloseDate``) is grouped as it is. Whether the field is a date or
a datetime comes from the ``date_type`` param, the audit fields every object has, or the
object's ``describe``. A grouped answer can't be paged and holds at most 2,000 rows (more is
refused with ``EXCEEDED_ID_LIMIT``), so a statement spans at most as many days as fit: one row a
day, and for a datetime field the padding days its UTC bounds add.

Currency: in a multi-currency org a currency field such as ``Amount`` holds each record's value
in that record's ``CurrencyIsoCode``, but an aggregate of it in a query with ``GROUP BY`` (every
statement here has one) comes back in the org's corporate currency, and ``convertCurrency()``
can't be applied to an aggregate (the ``convertCurrency()`` page, formerly "Querying Currency
Fields in Multicurrency Orgs":
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_querying_currency_fields.htm).
So ``SUM(Amount)`` is sent bare and its value stored as it comes: one figure a day in the
corporate currency, whatever the deals' own currencies, with no conversion of krsync's own.

No mapping text reaches SOQL raw: object and field names must be API-name identifiers, string
values are quoted with SOQL's escapes, numbers and booleans are rendered from Python values and
ISO dates only when they match a strict pattern.

OAuth2's refresh-token grant at ``{login_url}/services/oauth2/token`` runs in the engine's client,
which refreshes on an expired session (401 ``INVALID_SESSION_ID``) and repeats the call once;
:meth:`SalesforceConnector.merge_token` keeps the new access token, the org's ``instance_url``
and a rotated refresh token. The token answer's ``instance_url`` is where the org's REST API
lives, so calls go there (the one from this run's refresh, else the stored one) ahead of the
configured ``instance_url``, which a source may leave out: its first call then refreshes.
``Sforce-Limit-Info`` (the org's daily API usage) is recorded on the run.
"""

from connectors.salesforce.connector import (
    AUDIT_DATETIMES,
    NUMERIC_TYPES,
    USAGE_WARNING,
    SalesforceConnector,
)
from connectors.salesforce.errors import (
    API_DISABLED,
    DAILY_LIMIT_RETRY_AFTER,
    REFRESH_REFUSED,
    SESSION_REFUSED,
    ObjectRefused,
    QueryRejected,
)
from connectors.salesforce.models import (
    DEFAULT_LOGIN_URL,
    FIELD_PATH,
    IDENTIFIER,
    METRIC,
    SalesforceConfig,
    SalesforceCountParams,
    SalesforceCredentials,
    SalesforceSumParams,
)
from connectors.salesforce.soql import (
    GROUP_LIMIT,
    ISO_DATE,
    ISO_DATETIME,
    Statement,
    soql_condition,
    soql_literal,
    soql_string,
)

__all__ = [
    "API_DISABLED",
    "AUDIT_DATETIMES",
    "DAILY_LIMIT_RETRY_AFTER",
    "DEFAULT_LOGIN_URL",
    "FIELD_PATH",
    "GROUP_LIMIT",
    "IDENTIFIER",
    "ISO_DATE",
    "ISO_DATETIME",
    "METRIC",
    "NUMERIC_TYPES",
    "REFRESH_REFUSED",
    "SESSION_REFUSED",
    "USAGE_WARNING",
    "ObjectRefused",
    "QueryRejected",
    "SalesforceConfig",
    "SalesforceConnector",
    "SalesforceCountParams",
    "SalesforceCredentials",
    "SalesforceSumParams",
    "Statement",
    "soql_condition",
    "soql_literal",
    "soql_string",
]
