#!/usr/bin/python3
"""Validates deepfakemetapublish events against docs/event-schema.json.

  validate_events.py SCHEMA FILE [json-lines|json]

Prints one line per event kind seen ("frame 24" ...), and exits 1 at the first
invalid event. Also checks that the schema is not vacuous: each valid event
with a required field removed, or its type changed, must fail.
"""
import copy
import json
import sys

import jsonschema


def main():
    schema_path, path = sys.argv[1], sys.argv[2]
    fmt = sys.argv[3] if len(sys.argv) > 3 else "json-lines"
    schema = json.load(open(schema_path))
    validator = jsonschema.Draft202012Validator(schema)
    if fmt == "json":
        events = json.load(open(path))
    else:
        events = [json.loads(line) for line in open(path) if line.strip()]
    counts = {}
    for i, e in enumerate(events):
        errors = list(validator.iter_errors(e))
        if errors:
            print(f"event {i} invalid: {errors[0].message}: {json.dumps(e)[:300]}")
            return 1
        counts[e["type"]] = counts.get(e["type"], 0) + 1
        broken = copy.deepcopy(e)
        del broken["seq"]
        if validator.is_valid(broken):
            print(f"event {i}: still valid without 'seq': the schema checks nothing")
            return 1
        broken = copy.deepcopy(e)
        broken["type"] = "frame" if e["type"] != "frame" else "window"
        if validator.is_valid(broken):
            print(f"event {i}: still valid as type {broken['type']}")
            return 1
    for kind in sorted(counts):
        print(kind, counts[kind])
    return 0


if __name__ == "__main__":
    sys.exit(main())
