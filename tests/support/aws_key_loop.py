#!/usr/bin/env python3
"""A long-running AWS client for tests: one boto3 session for the whole run, calling STS
GetCallerIdentity every half second for SECONDS, the way a long terraform apply keeps one
provider. Prints each access key it signs with (from the signed request, botocore's before-send
event), the first time it is used, then `calls=N failures=M static=...` (static: whether static
keys were in its environment).

    aws_key_loop.py SECONDS
"""

import os
import sys
import time

import boto3

seconds = float(sys.argv[1])
session = boto3.session.Session()
sts = session.client("sts")
seen = []


def record_key(request, **_):
    authorization = request.headers.get("Authorization", b"")
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    key = authorization.split("Credential=", 1)[-1].split("/", 1)[0]
    if key and key not in seen:
        seen.append(key)
        print(f"key {key}", flush=True)


sts.meta.events.register("before-send.sts.GetCallerIdentity", record_key)
calls = failures = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    calls += 1
    try:
        sts.get_caller_identity()
    except Exception as error:  # every failure counts; the test shows them
        failures += 1
        print(f"failure {type(error).__name__}: {error}", flush=True)
    time.sleep(0.5)
static = "yes" if os.environ.get("AWS_ACCESS_KEY_ID") else "none"
print(f"calls={calls} failures={failures} static={static}", flush=True)
sys.exit(1 if failures else 0)
