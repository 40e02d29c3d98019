"""boto3 talks to the lab's moto server over https with verification on."""

from __future__ import annotations

import botocore.exceptions
import pytest

from adapters.aws import aws_client, check_aws
from adapters.aws.settings import aws_settings
from migrate.core.config import SiteConfig


def test_boto3_reaches_moto(site: SiteConfig) -> None:
    """The AWS endpoint answers STS and EC2 with the lab's credentials file and CA bundle."""
    assert aws_settings(site.replatformer) is not None and aws_settings(site.replatformer).endpoint_url and aws_settings(site.replatformer).endpoint_url.startswith("https://")
    result = check_aws(aws_settings(site.replatformer))
    assert result["region"] == "us-east-1" and result["availability_zones"]


def test_metal_instance_types_and_state(site: SiteConfig) -> None:
    """i4i.metal is known, i3.metal is not (validation on), and state persists across calls."""
    assert aws_settings(site.replatformer) is not None
    ec2 = aws_client(aws_settings(site.replatformer), "ec2")
    types = ec2.describe_instance_types(InstanceTypes=["i4i.metal"])["InstanceTypes"]
    assert types[0]["VCpuInfo"]["DefaultVCpus"] == 128
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.describe_instance_types(InstanceTypes=["i3.metal"])
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, VolumeType="gp3")
    listed = ec2.describe_volumes(VolumeIds=[volume["VolumeId"]])["Volumes"]
    assert listed[0]["Size"] == 8
    ec2.delete_volume(VolumeId=volume["VolumeId"])
