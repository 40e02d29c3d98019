"""AWS adapter (boto3): sessions from the site config, error mapping, and re-platforming to EC2.

The re-platform provider layer is in ebs*.py, images.py, instances.py and cleanup.py; the engine drives
it through `adapters.aws.replatformer.AwsReplatformer` (imported where needed: it pulls in the EBS stack).
"""

from adapters.aws.session import aws_client, check_aws

__all__ = ["aws_client", "check_aws"]
