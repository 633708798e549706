"""The comparison baseline: a CodeDeploy hook as teams write it in Python with boto3.

It does the same work as greenlight's hook: read the event, GET each URL of the plan, and report
Succeeded or Failed with PutLifecycleEventHookExecutionStatus. Like a Python Lambda it is driven
through the Lambda Runtime API (a minimal runtime loop stands in for awslambdaric), and like the
usual samples it builds its boto3 client and HTTP pool once, at import time.
"""

import json
import os
import urllib.request

import boto3
import urllib3

codedeploy = boto3.client("codedeploy")
http = urllib3.PoolManager()
URLS = json.loads(os.environ.get("BASELINE_URLS", "[]"))


def handler(event):
    passed = True
    for url in URLS:
        try:
            answer = http.request("GET", url, timeout=5.0, retries=False)
            passed = passed and 200 <= answer.status < 400
        except Exception:  # noqa: BLE001 - any error fails the check, as in the samples
            passed = False
    status = "Succeeded" if passed else "Failed"
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"status": status}


def main():
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
    while True:
        with urllib.request.urlopen(api + "next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        try:
            body, kind = json.dumps(handler(event)).encode(), "response"
        except Exception as error:  # noqa: BLE001
            body, kind = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode(), "error"
        urllib.request.urlopen(urllib.request.Request(api + request_id + "/" + kind, data=body, method="POST")).read()


if __name__ == "__main__":
    main()
