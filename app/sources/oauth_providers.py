"""Each platform's OAuth 2.0 authorization-code flow, as its documentation describes it.

One entry per provider: the endpoints, the scopes each connector needs, whether the platform
takes PKCE, how the client authenticates at the token endpoint, and the extra parameters the
authorization request needs. The flow itself (``app.sources.oauth``) reads nothing else, so a
platform that changes its flow changes one entry here.

Sources, per provider:

- Google: "Using OAuth 2.0 for Web Server Applications"
  (https://developers.google.com/identity/protocols/oauth2/web-server): `access_type=offline`
  and `prompt=consent` for a refresh token every time, PKCE (`S256`), `client_secret` in the
  token request body.
- HubSpot: "Working with OAuth" and the OAuth quickstart
  (https://developers.hubspot.com/docs/api/working-with-oauth): `app.hubspot.com/oauth/authorize`,
  `api.hubapi.com/oauth/v1/token` with `client_id` and `client_secret` in the form body, required
  `scope` and `optional_scope`; no PKCE documented for these apps.
- Salesforce: "OAuth 2.0 Web Server Flow for Web App Integration"
  (https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm):
  `{login_url}/services/oauth2/authorize` and `/token`, `code_challenge`/`code_verifier`
  recommended, the token answer names the org's `instance_url`.
- LinkedIn: "Authorization Code Flow (3-legged OAuth)"
  (https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow):
  `www.linkedin.com/oauth/v2/authorization` and `/accessToken`, secret in the body; PKCE only
  for native apps LinkedIn enables by hand, so not sent.
- Meta: "Manually Build a Login Flow" and "Long-Lived Access Tokens"
  (https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow,
  https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived):
  `www.facebook.com/{v}/dialog/oauth`, `graph.facebook.com/{v}/oauth/access_token`, comma-separated
  scopes; the short-lived token is exchanged with `grant_type=fb_exchange_token`. PKCE only in
  the OIDC flow still "in testing": not sent.
- Pipedrive: "OAuth authorization" (https://pipedrive.readme.io/docs/marketplace-oauth-authorization):
  `oauth.pipedrive.com/oauth/authorize` and `/oauth/token` with HTTP Basic client authentication;
  scopes are set on the app, none in the URL; no PKCE.
- Mailchimp: "Access user data with OAuth 2"
  (https://mailchimp.com/developer/marketing/guides/access-user-data-oauth-2/):
  `login.mailchimp.com/oauth2/authorize`, `/oauth2/token`, no scopes, no PKCE; the account's
  data centre comes from `/oauth2/metadata` (`Authorization: OAuth <token>` → `dc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ClientAuth = Literal["client_secret_post", "client_secret_basic"]
Extra = Literal["salesforce_instance", "mailchimp_dc", "meta_long_lived"]

META_VERSION = "v25.0"
SALESFORCE_LOGIN = "https://login.salesforce.com"


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    authorize_url: str
    token_url: str
    #: Connector key -> the scopes its reads need (empty: the platform has no scopes in the URL).
    scopes: dict[str, tuple[str, ...]]
    pkce: bool
    client_auth: ClientAuth = "client_secret_post"
    scope_separator: str = " "
    #: Parameters the platform needs beyond RFC 6749's.
    extra_params: dict[str, str] = field(default_factory=dict)
    #: Scopes asked as optional (HubSpot's `optional_scope`): granted when the account has them.
    optional_scopes: tuple[str, ...] = ()
    #: What the token answer needs afterwards.
    extras: tuple[Extra, ...] = ()

    @property
    def connectors(self) -> tuple[str, ...]:
        return tuple(self.scopes)


_HUBSPOT_OBJECTS = ("contacts", "companies", "deals")

PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        Provider(
            key="google",
            name="Google",
            authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
            token_url="https://oauth2.googleapis.com/token",
            scopes={
                "ga4": ("https://www.googleapis.com/auth/analytics.readonly",),
                "search_console": ("https://www.googleapis.com/auth/webmasters.readonly",),
                "youtube": ("https://www.googleapis.com/auth/yt-analytics.readonly",),
            },
            pkce=True,
            extra_params={"access_type": "offline", "prompt": "consent"},
        ),
        Provider(
            key="hubspot",
            name="HubSpot",
            authorize_url="https://app.hubspot.com/oauth/authorize",
            token_url="https://api.hubapi.com/oauth/v1/token",
            scopes={"hubspot": tuple(f"crm.objects.{o}.read" for o in _HUBSPOT_OBJECTS)},
            # Tickets and property schemas: not every account has them, and the connector
            # copes without (it checks filters by shape when it can't read the schema).
            optional_scopes=("tickets", *(f"crm.schemas.{o}.read" for o in _HUBSPOT_OBJECTS)),
            pkce=False,
        ),
        Provider(
            key="salesforce",
            name="Salesforce",
            authorize_url=f"{SALESFORCE_LOGIN}/services/oauth2/authorize",
            token_url=f"{SALESFORCE_LOGIN}/services/oauth2/token",
            scopes={"salesforce": ("api", "refresh_token")},
            pkce=True,
            extras=("salesforce_instance",),
        ),
        Provider(
            key="linkedin",
            name="LinkedIn",
            authorize_url="https://www.linkedin.com/oauth/v2/authorization",
            token_url="https://www.linkedin.com/oauth/v2/accessToken",
            scopes={"linkedin": ("rw_organization_admin", "r_organization_social")},
            pkce=False,
        ),
        Provider(
            key="meta",
            name="Meta (Facebook and Instagram)",
            authorize_url=f"https://www.facebook.com/{META_VERSION}/dialog/oauth",
            token_url=f"https://graph.facebook.com/{META_VERSION}/oauth/access_token",
            scopes={
                "meta": (
                    "read_insights",
                    "pages_read_engagement",
                    "instagram_basic",
                    "instagram_manage_insights",
                )
            },
            scope_separator=",",
            pkce=False,
            extras=("meta_long_lived",),
        ),
        Provider(
            key="pipedrive",
            name="Pipedrive",
            authorize_url="https://oauth.pipedrive.com/oauth/authorize",
            token_url="https://oauth.pipedrive.com/oauth/token",
            scopes={"pipedrive": ()},
            pkce=False,
            client_auth="client_secret_basic",
        ),
        Provider(
            key="mailchimp",
            name="Mailchimp",
            authorize_url="https://login.mailchimp.com/oauth2/authorize",
            token_url="https://login.mailchimp.com/oauth2/token",
            scopes={"mailchimp": ()},
            pkce=False,
            extras=("mailchimp_dc",),
        ),
    )
}


def provider_for_connector(connector: str) -> Provider | None:
    return next((p for p in PROVIDERS.values() if connector in p.scopes), None)


def mailchimp_metadata_url(token_url: str) -> str:
    """Beside the token endpoint: `https://login.mailchimp.com/oauth2/metadata` by default."""
    return token_url.rsplit("/", 1)[0] + "/metadata"
