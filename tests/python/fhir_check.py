"""Validates FHIR resources with an implementation vcare did not write:
fhir.resources (PyPI), its R4B models (R4B is R4 for Communication and
Encounter). Reads a JSON array of resources on stdin; each must parse
(types, cardinality, required elements, no unknown elements) and every
code of a required binding the models list must be one of its values.
Prints {"valid": n} and exits 0, or names the first problem and exits 1.
"""

import importlib
import json
import sys

from pydantic import BaseModel


def codes_hold(model, path):
    for name, field in type(model).model_fields.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        extra = field.json_schema_extra or {}
        allowed = extra.get("enum_values") if isinstance(extra, dict) else None
        # The models list a `code` element's required values (plus a "+").
        if allowed:
            for v in value if isinstance(value, list) else [value]:
                if v not in allowed or v == "+":
                    raise ValueError(f"{path}.{name}: {v!r} is not one of {allowed}")
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                codes_hold(item, f"{path}.{name}[{i}]")


def main():
    resources = json.load(sys.stdin)
    for r in resources:
        kind = r.get("resourceType", "")
        module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
        try:
            model = getattr(module, kind).model_validate(r)
            codes_hold(model, kind)
        except Exception as e:  # noqa: BLE001 - the message is the answer
            print(json.dumps({"invalid": kind, "why": str(e)[:2000]}))
            sys.exit(1)
    print(json.dumps({"valid": len(resources)}))


if __name__ == "__main__":
    main()
