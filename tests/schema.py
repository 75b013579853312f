"""Validate --json documents against the schema shipped in the package (jsonschema)."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = json.loads(resources.files("universality").joinpath("data/report.schema.json").read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(document: dict) -> None:
    """Raise jsonschema.ValidationError when ``document`` does not match the schema."""
    _validator().validate(document)
