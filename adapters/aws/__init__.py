"""AWS adapter (boto3): sessions from the site config, error mapping."""

from adapters.aws.session import aws_client, check_aws

__all__ = ["aws_client", "check_aws"]
