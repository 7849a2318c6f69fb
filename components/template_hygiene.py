"""Small corrections to what aws-cdk-lib generates, so every template passes cfn-lint without warnings."""

from __future__ import annotations

import aws_cdk as cdk


def drop_redundant_provider_dependencies(stack: cdk.Stack) -> None:
    """Remove the explicit DependsOn from aws-cdk's custom-resource provider handlers on their own role.

    Providers such as ``Custom::S3AutoDeleteObjectsCustomResourceProvider`` add ``DependsOn: <Role>`` to a handler
    that already references the role with ``Fn::GetAtt``; cfn-lint reports that as W3005. The ``GetAtt`` keeps the
    same creation order, so removing the explicit edge changes nothing at deploy time.
    """
    for child in stack.node.children:
        if not child.node.id.endswith("CustomResourceProvider"):
            continue
        handler = child.node.try_find_child("Handler")
        role = child.node.try_find_child("Role")
        if isinstance(handler, cdk.CfnResource) and isinstance(role, cdk.CfnResource):
            handler.remove_resource_dependency(role)
