"""Offline SAM transform of infra/template.yaml, as CloudFormation would run it.

Resolves AWS::Include of local files first (CloudFormation processes
AWS::Include before AWS::Serverless), then runs SAM's own translator, and
prints the resulting CloudFormation template as JSON. No AWS account is
contacted: managed policies are named by ARN in the template. Used by
tests/tests/contract.rs to check what API Gateway would be given.
"""

import json
import os
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


def include(node, base):
    if isinstance(node, dict):
        t = node.get("Fn::Transform")
        if isinstance(t, dict) and t.get("Name") == "AWS::Include":
            with open(os.path.join(base, t["Parameters"]["Location"])) as f:
                return include(yaml_parse(f.read()), base)
        return {k: include(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [include(v, base) for v in node]
    return node


class NoManagedPolicies:
    def load(self):
        raise SystemExit("a managed policy is named without its ARN; name it by ARN")


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    with open(path) as f:
        template = include(yaml_parse(f.read()), os.path.dirname(path))
    # What `sam package` does to code: upload it and name the object.
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for name, r in template["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = f"s3://packaged/{name}.zip"
    print(json.dumps(transform(template, {}, NoManagedPolicies()), indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
