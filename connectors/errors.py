"""The default response classifier: a failed answer becomes the error of :mod:`connectors.base`
that tells the engine what to do (fix the source, wait, retry) and the user what to fix.

Most of it is the same on every platform (a 401 is a credential, a 429 a wait, a 5xx a retry),
so the status decides the kind of error and a connector writes only what its platform adds: a
table of hints (status, vendor error code or kind → the message that says what to fix) and,
where the platform says more in its body than a message (Meta's codes, Salesforce's
``errorCode``), a small reader that pulls those codes out. The shape follows the Singer SDK's
``validate_response``: classified by status unless the connector says otherwise.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from connectors.base import (
    ConnectorAuthError,
    ConnectorConfigError,
    HttpClient,
    Mask,
    RateLimited,
    RetriableError,
    TokenRefreshError,
    excerpt,
    json_body,
    retry_after,
    status_failure,
)


class RequestRefused(ConnectorConfigError):
    """A refusal that is one request's fault, not the source's (a 400 naming a metric or field
    the platform doesn't have): a connector asking once for several mappings makes it a
    :class:`Hint`'s error, then fails those mappings only and goes on with the others."""


Kind = Literal["auth", "permission", "config", "rate_limited", "retriable"]

#: How much of a vendor's error code a message quotes: a code, not a sentence.
CODE_CHARS = 80


def kind_of(status: int) -> Kind:
    """What a status asks of the engine, as most platforms mean it."""
    if status == 401:
        return "auth"
    if status == 403:
        return "permission"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 408:
        return "retriable"
    return "config"


@dataclass(frozen=True)
class Refusal:
    """A failed answer, read once: what hints are formatted from and callable hints decide on.

    ``said`` and ``codes`` are masked and cut already; ``body`` is the parsed JSON as it came
    (a hint quoting more of it goes through :meth:`quote`).
    """

    status: int
    #: The platform's own words, never empty (``HTTP 404`` when it said nothing).
    said: str
    #: The vendor's error codes, the most telling first (``INVALID_FIELD``, ``190``).
    codes: tuple[str, ...] = ()
    body: Any = None
    retry_after: float | None = None
    mask: Mask | None = None
    #: What the connector's templates may name besides these (``config``, an object's name).
    fields: Mapping[str, Any] = field(default_factory=dict)
    #: The refused request's URL path (``{path}`` in a template, :attr:`Hint.path`'s subject).
    path: str = ""

    @property
    def code(self) -> str:
        return self.codes[0] if self.codes else ""

    @property
    def kind(self) -> Kind:
        return kind_of(self.status)

    def quote(self, text: str, limit: int = CODE_CHARS) -> str:
        """More of the platform's words, masked and cut as ``said`` is."""
        return excerpt(text, self.mask, limit)


@dataclass(frozen=True)
class Hint:
    """A message template (``{platform}``, ``{status}``, ``{said}``, ``{code}``, ``{path}`` and
    the fields a connector passes, ``{config.site_url}``) and the error it makes; ``error`` None
    takes the kind's own (:data:`KIND_ERRORS`)."""

    message: str
    error: type[Exception] | None = None
    #: A pattern the request's path must contain for the hint to answer: a status that means
    #: one thing on some calls (a 404 on a describe is an object the user can't see).
    path: str | None = None


#: A hint: a template, a template with its error, or a function deciding from the refusal
#: (None: not this one, look further); a tuple of them is tried in order.
One = str | Hint | Callable[[Refusal], Exception | None]
Rule = One | tuple[One, ...]
Key = int | str
#: Keys: a vendor code (``"INVALID_FIELD"``), a status (``404``) or a kind (``"retriable"``),
#: tried in that order; a tuple of them shares one hint (``(404, 410)``).
Hints = Mapping[Key | tuple[Key, ...], Rule]
#: ``(codes, words)`` from a failed answer's parsed body; words unmasked (the classifier masks).
Reader = Callable[[httpx.Response, Any], tuple[Sequence[str], str]]

KIND_ERRORS: dict[Kind, type[Exception]] = {
    "auth": ConnectorAuthError,
    "permission": ConnectorAuthError,
    "config": ConnectorConfigError,
    "rate_limited": RateLimited,
    "retriable": RetriableError,
}
DEFAULT_HINTS: dict[Kind, str] = {
    "auth": "{platform} refused the credentials ({status}): {said}",
    "permission": "{platform} refused access ({status}): {said}",
    "config": "{platform} refused the request ({status}): {said}",
    "rate_limited": "{platform} asks to slow down: {said}",
    "retriable": "{platform} is having trouble ({status}): {said}",
}


def read_error(response: httpx.Response, body: Any) -> tuple[Sequence[str], str]:
    """The common error envelopes: ``{"error": {"message", "code"}}``, OAuth's ``{"error",
    "error_description"}``, ``{"message"}``, problem details' ``{"title", "detail"}``; else
    the text."""
    if not isinstance(body, dict):
        return (), response.text
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or error.get("status")
        return ([str(code)] if code else []), str(error.get("message") or "")
    if isinstance(error, str):
        return [error], str(body.get("error_description") or "")
    parts = [str(body.get(k) or "").strip() for k in ("title", "detail")]
    return (), str(body.get("message") or "") or ": ".join(p for p in parts if p)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@dataclass(frozen=True)
class Classifier:
    """One platform's classification: its name, its hints, how its body names codes and words,
    and how long it asks to wait."""

    platform: str
    hints: Hints = field(default_factory=dict)
    read: Reader = read_error
    wait: Callable[[httpx.Response], float | None] = retry_after
    _table: dict[Key, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_table", _by_key(self.hints))

    def __call__(
        self,
        response: httpx.Response,
        mask: Mask | None,
        *,
        hints: Hints | None = None,
        said: str | None = None,
        wait: float | None = None,
        **fields: Any,
    ) -> Exception:
        """The error for ``response``; ``hints`` add to the table for this call (what depends on
        the source, such as which credential it holds), ``said`` and ``wait`` replace what the
        body and the headers say."""
        status, body = response.status_code, json_or_none(response)
        codes, words = self.read(response, body)
        if said is None:
            said = excerpt(words, mask)
        refusal = Refusal(
            status=status,
            said=said or f"HTTP {status}",
            codes=tuple(c for c in (excerpt(str(c), mask, CODE_CHARS) for c in codes) if c),
            body=body,
            retry_after=wait if wait is not None else self.wait(response),
            mask=mask,
            fields=fields,
            path=_path(response),
        )
        return self.classify(refusal, hints)

    def json(
        self, response: httpx.Response, mask: Mask | None, *, obj: bool = False, **kwargs: Any
    ) -> Any:
        """A success's JSON (an object, when ``obj``: anything else is retried), else the error
        ``__call__`` makes of the failure raised, with ``kwargs`` as it takes them."""
        if not response.is_success:
            raise self(response, mask, **kwargs)
        body = json_body(response, self.platform)
        if obj and not isinstance(body, dict):
            raise RetriableError(f"{self.platform} answered with JSON that isn't an object")
        return body

    async def get(
        self, http: HttpClient, url: str, params: Any = None, *, obj: bool = False, **kwargs: Any
    ) -> Any:
        """One GET on the engine's client, answered as :meth:`json` answers."""
        return self.json(await http.get(url, params=params), http.redact, obj=obj, **kwargs)

    def classify(self, refusal: Refusal, hints: Hints | None = None) -> Exception:
        """The first hint that answers, by vendor code, then status, then kind; else the kind's
        default message."""
        table = {**self._table, **_by_key(hints)} if hints else self._table
        keys: list[Key] = [*refusal.codes, refusal.status, refusal.kind]
        for key in keys:
            rule = table.get(key)
            error = None if rule is None else self._apply(rule, refusal)
            if error is not None:
                return error
        error = self._apply(DEFAULT_HINTS[refusal.kind], refusal)
        assert error is not None
        return error

    def _apply(self, rule: Rule, refusal: Refusal) -> Exception | None:
        if isinstance(rule, tuple):
            tried = (self._apply(one, refusal) for one in rule)
            return next((error for error in tried if error is not None), None)
        if callable(rule):
            return rule(refusal)
        hint = Hint(rule) if isinstance(rule, str) else rule
        if hint.path is not None and not re.search(hint.path, refusal.path):
            return None
        message = hint.message.format(
            platform=self.platform,
            status=refusal.status,
            said=refusal.said,
            code=refusal.code,
            **({"path": refusal.path} | dict(refusal.fields)),
        )
        error = hint.error or KIND_ERRORS[refusal.kind]
        if issubclass(error, RateLimited):
            return error(message, refusal.retry_after)
        return error(message)


def _path(response: httpx.Response) -> str:
    try:
        return response.request.url.path
    except RuntimeError:  # a response built without its request (a test's)
        return ""


def _by_key(hints: Hints) -> dict[Key, Rule]:
    table: dict[Key, Rule] = {}
    for keys, rule in hints.items():
        table.update(dict.fromkeys(keys if isinstance(keys, tuple) else (keys,), rule))
    return table


# csv and rest_json: a failed answer worded as the engine's client words it, with its wait.
def raise_failure(classifier: Classifier, http: HttpClient, response: httpx.Response) -> None:
    """Nothing for a success; else the classifier's error for the failure, its ``said`` and wait
    the client's (:func:`~connectors.base.status_failure`)."""
    if not response.is_success:
        said, wait = status_failure(http, response)
        raise classifier(response, http.redact, said=said, wait=wait) from None


# salesforce and pipedrive: a refresh the engine's client could not make.
def refresh_refused(exc: TokenRefreshError, platform: str, fix: str) -> Exception:
    """The token endpoint down is worth another run; a refused refresh token needs a person."""
    if exc.transient:
        return RetriableError(
            f"{platform}'s token endpoint is unavailable: the next run tries again"
        )
    return ConnectorAuthError(f"{platform} refused to refresh the access token: {fix}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """The end of a message about an unknown ``name``: up to three close names a platform knows
    (``; did you mean `sessions`?``), or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=3)
    return f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
