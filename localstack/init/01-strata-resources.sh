#!/usr/bin/env bash
# LocalStack init hook: the template's non-Lambda resources for Stage=dev (bus, DLQ, service-token secret,
# API URL parameter). The local cloud creates the same ones itself when it is pointed at LocalStack.
set -euo pipefail
awslocal events create-event-bus --name strata-dev >/dev/null || true
awslocal sqs create-queue --queue-name strata-dev-events-dlq >/dev/null
awslocal secretsmanager create-secret --name strata/dev/service-token \
  --secret-string "$(head -c 48 /dev/urandom | base64 | tr -d '/+=' )" >/dev/null 2>&1 || true
awslocal ssm put-parameter --name /strata/dev/api-url --type String --overwrite \
  --value "${STRATA_API_URL:-http://127.0.0.1:3000}" >/dev/null
echo "strata: bus, DLQ, secret and parameter ready"
