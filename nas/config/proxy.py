"""``proxy:``: zero-cost proxies, scores of an untrained model from one batch."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from nas.config._schema import Int, Str, check, one_of, section
from nas.config.names import registered

PROXY_USES = ("off", "screen", "prior", "objective")


@section
class ProxyConfig:
    """``use``: ``off``; ``screen`` (draw ``candidates`` from the sampler per trial slot, train the one the proxy
    predicts most useful to the front); ``prior`` (score ``prior_samples`` random architectures and try the best
    ``prior_top`` first); ``objective`` (the proxy is an extra objective for the sampler). ``name``: a registered
    proxy, or ``auto`` (synflow and naswot, the best by online Spearman ρ). A proxy is trusted only once it beats
    ``params`` on ``min_pairs`` trained trials."""

    use: Annotated[Str, one_of(PROXY_USES, "use")] = "off"
    name: Annotated[Str, one_of(lambda: registered("proxy"), "proxy", extra=("auto",))] = "auto"
    candidates: Int = Field(4, ge=1)
    prior_samples: Int = Field(64, ge=1)
    prior_top: Int = Field(8, ge=1)
    min_pairs: Int = Field(5, ge=2)
    batch_size: Int = Field(64, ge=2)

    @model_validator(mode="after")
    def _consistent(self) -> ProxyConfig:
        check(not (self.use == "objective" and self.name == "auto"), "an objective needs one fixed proxy, not auto",
              "name one, e.g. `name: naswot`", "name")
        check(self.prior_samples >= self.prior_top, "need prior_samples >= prior_top >= 1",
              "e.g. `prior_samples: 64, prior_top: 8`", "prior_top")
        return self
