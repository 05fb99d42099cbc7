"""What a CSV source is told: where the file is and how to read it, and the metric's params.

Separate from the reading code so the saved shapes (checked when a source or mapping is saved)
can be read on their own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.models import HttpAddress, Params, Strict, StrptimeFormat, has_password


class CsvConfig(Strict):
    url: HttpAddress | None = Field(
        None,
        description="An http(s) URL of the CSV, e.g. a Google Sheet's 'publish to web' CSV link.",
    )
    path: str | None = Field(
        None,
        description="A file inside KRSYNC_FILES_DIR (relative to it, or absolute inside it).",
    )
    delimiter: Literal[",", ";", "\t", "|"] | None = Field(
        None, description="The field separator; sniffed among `,`, `;` and tab when unset."
    )
    decimal: Literal[",", "."] | None = Field(
        None, description="The decimal mark; `,` when the delimiter is `;`, else `.`, when unset."
    )
    date_format: StrptimeFormat | None = Field(
        None,
        description="A strptime format such as `%d/%m/%Y`, tried before the built-in formats.",
    )

    @field_validator("url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        # The config is stored and shown in clear, and a CSV source holds no credentials.
        if value is not None and has_password(value):
            raise ValueError(
                "`url` must not contain a password: a CSV source reads public links only and "
                "takes no credentials"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CsvConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("give either `url` or `path`")
        return self


class CsvCredentials(Strict):
    """A CSV source needs no secret (a URL must be public); stray fields are refused."""


class CsvParams(Params):
    date_column: str = Field("date", min_length=1, description="The column holding the day.")
    value_column: str = Field("value", min_length=1, description="The column holding the figure.")
    group_column: str | None = Field(
        None, min_length=1, description="A column whose text splits the figure into groups."
    )
