"""Application Auto Scaling of an instance endpoint: more instances when invocations per instance rise.

A real-time endpoint on instances has a fixed count unless its variant is a scalable target. The
target-tracking policy on ``SageMakerVariantInvocationsPerInstance`` (invocations per instance per
minute, a metric SageMaker publishes) adds instances when the load passes the target and removes
them, more slowly, when it falls. Serverless endpoints scale by themselves and get none of this.

SageMaker refuses some endpoint updates while the variant is registered, so ``deploy_model_uri``
removes the registration before it points the endpoint at a new config and registers it again
once the endpoint is in service.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from hbcore.aws.backend import Backend
from hbcore.aws.progress import Progress, silent

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"
VARIANT = "AllTraffic"
# Scale out quickly when beats pile up in the stream; scale in slowly, a new instance takes minutes.
SCALE_OUT_COOLDOWN_S = 60
SCALE_IN_COOLDOWN_S = 600


def resource_id(endpoint: str, variant: str = VARIANT) -> str:
    """The Application Auto Scaling resource id of an endpoint variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


def policy_name(endpoint: str) -> str:
    return f"{endpoint}-invocations-per-instance"


def desired_target(endpoint: str, min_count: int, max_count: int) -> dict:
    """The ``register_scalable_target`` arguments."""
    return {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": resource_id(endpoint),
            "ScalableDimension": SCALABLE_DIMENSION, "MinCapacity": min_count, "MaxCapacity": max_count}


def desired_policy(endpoint: str, invocations_per_instance_per_minute: int) -> dict:
    """The ``put_scaling_policy`` arguments: target tracking of invocations per instance."""
    return {
        "PolicyName": policy_name(endpoint),
        "ServiceNamespace": SERVICE_NAMESPACE,
        "ResourceId": resource_id(endpoint),
        "ScalableDimension": SCALABLE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(invocations_per_instance_per_minute),
            "PredefinedMetricSpecification": {"PredefinedMetricType": PREDEFINED_METRIC},
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
            "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
        },
    }


def autoscaling_status(backend: Backend, endpoint: str) -> dict | None:
    """The registered target's capacities and its policy's target value; None when not registered."""
    client = backend.client("application-autoscaling")
    targets = client.describe_scalable_targets(ServiceNamespace=SERVICE_NAMESPACE,
                                               ResourceIds=[resource_id(endpoint)],
                                               ScalableDimension=SCALABLE_DIMENSION)["ScalableTargets"]
    if not targets:
        return None
    policies = client.describe_scaling_policies(ServiceNamespace=SERVICE_NAMESPACE, ResourceId=resource_id(endpoint),
                                                ScalableDimension=SCALABLE_DIMENSION)["ScalingPolicies"]
    target_values = [policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for policy in policies
                     if policy["PolicyName"] == policy_name(endpoint)]
    return {"min": targets[0]["MinCapacity"], "max": targets[0]["MaxCapacity"],
            "invocations_per_instance_per_minute": target_values[0] if target_values else None}


def ensure_autoscaling(backend: Backend, endpoint: str, min_count: int, max_count: int,
                       invocations_per_instance_per_minute: int, *, progress: Progress = silent) -> bool:
    """Register the variant between ``min_count`` and ``max_count`` instances with the policy; True if changed."""
    wanted = {"min": min_count, "max": max_count,
              "invocations_per_instance_per_minute": float(invocations_per_instance_per_minute)}
    if autoscaling_status(backend, endpoint) == wanted:
        return False
    client = backend.client("application-autoscaling")
    client.register_scalable_target(**desired_target(endpoint, min_count, max_count))
    client.put_scaling_policy(**desired_policy(endpoint, invocations_per_instance_per_minute))
    progress(f"autoscaling {endpoint}: {min_count}-{max_count} instances, target "
             f"{invocations_per_instance_per_minute} invocations per instance per minute")
    return True


def remove_autoscaling(backend: Backend, endpoint: str, *, progress: Progress = silent) -> bool:
    """Deregister the variant (its policies go with it); False when it was not registered."""
    if autoscaling_status(backend, endpoint) is None:
        return False
    try:
        backend.client("application-autoscaling").deregister_scalable_target(
            ServiceNamespace=SERVICE_NAMESPACE, ResourceId=resource_id(endpoint), ScalableDimension=SCALABLE_DIMENSION)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ObjectNotFoundException":
            raise
        return False
    progress(f"removed the autoscaling of {endpoint}")
    return True
