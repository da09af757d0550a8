"""The names of one deployment's cloud resources, and the default region.

The same names serve the local cloud and AWS, so a user moves between the two without renaming
anything.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Names:
    """Names of the cloud resources of one deployment, derived from a prefix.

    The same names are used locally and on AWS, so a user can move between the two without
    renaming anything.
    """

    prefix: str = "hb"

    @property
    def stream(self) -> str:
        return f"{self.prefix}-beats"

    @property
    def function(self) -> str:
        return f"{self.prefix}-classifier"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def endpoint(self) -> str:
        return f"{self.prefix}-endpoint"

    @property
    def stack(self) -> str:
        return f"{self.prefix}-pipeline"

    def bucket(self, account_id: str, region: str) -> str:
        """S3 bucket for model artifacts and the Lambda zip (bucket names are global)."""
        return f"{self.prefix}-artifacts-{account_id}-{region}"


COST_TAG_PROJECT = "hb:project"
COST_TAG_DEPLOYMENT = "hb:deployment"
PROJECT_NAME = "heartbeat-monitor"


def cost_tags(names: Names) -> list[dict[str, str]]:
    """The cost-allocation tags of everything ``up`` makes (activate them once in the Billing console
    to see a deployment's cost apart in Cost Explorer)."""
    return [{"Key": COST_TAG_PROJECT, "Value": PROJECT_NAME}, {"Key": COST_TAG_DEPLOYMENT, "Value": names.prefix}]
