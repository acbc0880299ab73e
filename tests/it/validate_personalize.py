"""Checks Amazon Personalize requests against the service's published API model (botocore's).

Usage: validate_personalize.py FILE, where FILE holds {"requests": [{"operation", "input"}]} (what
`pengine import --dry-run --json` prints, or the bodies the tests' fake service recorded). Each
input goes through botocore's own parameter validator (unknown or missing members, types, minimum
lengths), then through the constraints that validator leaves out: maximum lengths, patterns and
enums. Prints one line per problem and exits 1 when there is any, 0 when every request is valid.
"""

import json
import re
import sys

import botocore.session
from botocore.model import OperationNotFoundError
from botocore.validate import ParamValidator


# Patterns of the model are Java regular expressions; these classes are written for Python's re.
JAVA_CLASSES = {r"\p{ASCII}": r"[\x00-\x7f]"}


def python_pattern(pattern):
    for java, python in JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    return pattern


def constraint_problems(value, shape, where):
    """Maximum lengths, patterns and enums of the model, which ParamValidator does not check."""
    problems = []
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                problems += constraint_problems(value[name], member, f"{where}.{name}")
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            problems += constraint_problems(item, shape.member, f"{where}[{i}]")
    elif kind == "string" and isinstance(value, str):
        meta = shape.metadata
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} characters, at most {meta['max']}")
        if "pattern" in meta and not re.search(python_pattern(meta["pattern"]), value):
            problems.append(f"{where}: {value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} is not one of {shape.enum}")
    return problems


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        document = json.load(f)
    model = botocore.session.get_session().get_service_model("personalize")
    requests = document["requests"]
    problems = []
    for i, request in enumerate(requests):
        operation = request["operation"]
        try:
            shape = model.operation_model(operation).input_shape
        except OperationNotFoundError:
            problems.append(f"request {i}: no operation {operation} in the model")
            continue
        report = ParamValidator().validate(request["input"], shape)
        if report.has_errors():
            problems.append(f"request {i} {operation}: {report.generate_report()}")
        problems += constraint_problems(request["input"], shape, f"request {i} {operation}")
    for problem in problems:
        print(problem)
    print(f"{len(requests)} requests checked against botocore's personalize model, "
          f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
