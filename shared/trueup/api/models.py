"""The base of the HTTP API's request and response models; each router defines its own next to it."""

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    # Built on first use, not at import: a function's cold start pays only for the models it answers with.
    model_config = ConfigDict(defer_build=True)


class Actor(ApiModel):
    """Who made a change: the token's subject, and a name or e-mail where the token carries one."""

    subject: str
    name: str | None = None
