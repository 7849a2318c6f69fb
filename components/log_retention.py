"""CloudWatch Logs retention from a number of days (the stage config) to the CDK enum."""

from __future__ import annotations

from aws_cdk import aws_logs as logs

from config.validation import CLOUDWATCH_RETENTION_DAYS

# The CDK enum lists the same values as the API, in the same order, as names (ONE_DAY ... TEN_YEARS).
_BY_DAYS = dict(zip(CLOUDWATCH_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True))


def retention_days(days: int) -> logs.RetentionDays:
    """The ``RetentionDays`` member for ``days``; the config has already checked that CloudWatch accepts it."""
    return _BY_DAYS[days]
