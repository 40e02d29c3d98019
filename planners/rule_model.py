"""Policy rules of the constraints file: how migration teams plan waves, each a cost or a hard rule.

```yaml
classify:                       # where a VM's environment, criticality and application come from
  environment: {tag: env, attribute: Environment, pattern: "^(?P<value>dev|test|prod)-"}
  criticality: {tag: criticality}
  application: {tag: app}
rules:
  environment_order: {order: [dev, test, prod], hard: true}   # lower environments in earlier waves
  no_mixed_environments: {weight: 50}                          # one environment per wave
  dependencies_first: {hard: true}       # a flow's destination moves in the same wave as its source or before
  critical_not_before: {wave: 3, values: [high, critical]}     # critical VMs in wave 3 or later
  application_whole: {hard: true}        # an application in one wave unless it exceeds a wave
```

A classifier tries the tag category (any case), then the custom attribute, then the name pattern (the
group named `value`, else group 1, else the whole match); values compare without case. A rule is hard
(`hard: true`: never broken, like capacity) or soft: `weight` is the cost of each violation in the
unit of the cut (MiB of traffic; the app weight is 100), default DEFAULT_RULE_WEIGHT.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from migrate.core.models.base import StrictModel

__all__ = ["DEFAULT_RULE_WEIGHT", "MAX_RULE_WEIGHT", "Classifier", "Classify", "CriticalRule", "EnvironmentOrderRule",
           "Rule", "Rules"]

DEFAULT_RULE_WEIGHT = 100.0
MAX_RULE_WEIGHT = 1e12
MAX_PATTERN = 500

Label = Annotated[str, Field(min_length=1, max_length=200)]


class Classifier(StrictModel):
    """Where one VM property comes from: a tag category, a custom attribute, a name pattern (first found wins)."""

    tag: Label | None = Field(None, description="tag category, e.g. env (any case)")
    attribute: Label | None = Field(None, description="custom attribute name")
    pattern: str | None = Field(None, max_length=MAX_PATTERN,
                                description="regex searched in the VM name; the value is group `value`, else "
                                            "group 1, else the whole match")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _some_source(self) -> Classifier:
        if self.tag is None and self.attribute is None and self.pattern is None:
            raise ValueError("give at least one of `tag`, `attribute` or `pattern`")
        return self


class Classify(StrictModel):
    """Classifiers of the properties the rules read."""

    environment: Classifier = Field(default_factory=lambda: Classifier(tag="env"))
    criticality: Classifier = Field(default_factory=lambda: Classifier(tag="criticality"))
    application: Classifier = Field(default_factory=lambda: Classifier(tag="app"))


class Rule(StrictModel):
    """A rule is hard (`hard: true`) or costs `weight` per violation (default DEFAULT_RULE_WEIGHT)."""

    hard: bool = False
    weight: float | None = Field(None, gt=0, le=MAX_RULE_WEIGHT, allow_inf_nan=False,
                                 description="cost of one violation, in the cut's unit (MiB)")

    @model_validator(mode="after")
    def _hard_or_weight(self) -> Rule:
        if self.hard and self.weight is not None:
            raise ValueError("give `weight` (a soft rule) or `hard: true`, not both")
        return self

    @property
    def cost(self) -> float:
        """The cost of one violation of a soft rule."""
        return DEFAULT_RULE_WEIGHT if self.weight is None else self.weight


class EnvironmentOrderRule(Rule):
    """Lower environments move first: no VM of an environment in a wave before one of a lower environment."""

    order: list[Label] = Field(..., min_length=2, max_length=50, description="lowest first, e.g. [dev, test, prod]")

    @field_validator("order")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen = [v.strip().lower() for v in value]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} more than once")
        return value


class CriticalRule(Rule):
    """Critical VMs (by the criticality classifier) move in wave `wave` or later."""

    wave: int = Field(..., ge=1, le=10_000, description="the first wave critical VMs may move in")
    values: list[Label] = Field(default_factory=lambda: ["critical", "high"], min_length=1,
                                description="criticality values that count as critical (any case)")


class Rules(StrictModel):
    """The policy rules in force (each absent = off)."""

    environment_order: EnvironmentOrderRule | None = None
    no_mixed_environments: Rule | None = None
    dependencies_first: Rule | None = None
    critical_not_before: CriticalRule | None = None
    application_whole: Rule | None = None

    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in type(self).model_fields)
