#!/usr/bin/env bash
# Install the client tools the end-to-end tests drive, into git-ignored folders
# next to this script:
#   tests/e2e/.venv          Python venv: awscli v1, boto3, paho-mqtt 2.x, pytest
#   tests/e2e/.venv-ministack  ministack, benchmark 4's peer (its own botocore pin)
#   tests/e2e/node_modules   aws-iot-device-sdk@2.2.16 (from package-lock.json)
# Idempotent: when the stamp files match the requirement/lock files and the tools
# still answer, nothing is downloaded again. Any failure aborts with non-zero exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

log() { printf '[install-clients] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "$python not found (install python3 and python3-venv)"
command -v node >/dev/null || die "node not found (install nodejs)"
command -v npm >/dev/null || die "npm not found (install npm)"

fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- Python venv
venv="$here/.venv"
py_stamp="$venv/.fleetjobs-installed"
py_want="$(fingerprint requirements.txt) $("$python" -c 'import sys; print(sys.version.split()[0])')"

venv_ok() {
    [[ -x "$venv/bin/python" && -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_want" ]] || return 1
    "$venv/bin/python" -c 'import boto3, paho.mqtt, pytest, awscli' 2>/dev/null || return 1
    "$venv/bin/aws" --version >/dev/null 2>&1 || return 1
}

if venv_ok; then
    log "python venv up to date ($venv)"
else
    log "creating python venv in $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "python3 -m venv failed (is python3-venv installed?)"
    "$venv/bin/python" -m pip install --quiet -r requirements.txt || die "pip install -r requirements.txt failed"
    "$venv/bin/aws" --version >/dev/null 2>&1 || die "aws CLI does not run from the venv"
    "$venv/bin/python" -c 'import boto3, paho.mqtt, pytest' || die "python packages do not import"
    printf '%s\n' "$py_want" > "$py_stamp"
    log "python venv ready: $("$venv/bin/aws" --version 2>&1)"
fi

# ------------------------------------------------ ministack (benchmark 4's peer)
# Its own venv: ministack pins a botocore that boto3/awscli above cannot share.
ms_venv="$here/.venv-ministack"
ms_stamp="$ms_venv/.fleetjobs-installed"
ms_want="$(fingerprint requirements-ministack.txt) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ -x "$ms_venv/bin/python" && -f "$ms_stamp" && "$(cat "$ms_stamp")" == "$ms_want" ]] \
    && "$ms_venv/bin/python" -c 'import ministack' 2>/dev/null; then
    log "ministack venv up to date ($ms_venv)"
else
    log "creating ministack venv in $ms_venv"
    rm -rf "$ms_venv"
    "$python" -m venv "$ms_venv" || die "python3 -m venv failed (ministack)"
    "$ms_venv/bin/python" -m pip install --quiet -r requirements-ministack.txt || die "pip install ministack failed"
    "$ms_venv/bin/python" -c 'import ministack' || die "ministack does not import"
    printf '%s\n' "$ms_want" > "$ms_stamp"
    log "ministack venv ready"
fi

# --------------------------------------------------------------- Node modules
node_stamp="$here/node_modules/.fleetjobs-installed"
sdk_example="$here/node_modules/aws-iot-device-sdk/examples/jobs-example.js"

if [[ -f package-lock.json ]]; then
    node_want="$(fingerprint package.json package-lock.json) $(node --version)"
else
    node_want="$(fingerprint package.json) $(node --version)"
fi

if [[ -f "$node_stamp" && "$(cat "$node_stamp")" == "$node_want" && -f "$sdk_example" ]]; then
    log "node_modules up to date ($here/node_modules)"
else
    if [[ -f package-lock.json ]]; then
        log "npm ci (from package-lock.json)"
        npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
    else
        log "npm install (no package-lock.json yet: it will be written, commit it)"
        npm install --no-audit --no-fund --loglevel=error || die "npm install failed"
    fi
    [[ -f "$sdk_example" ]] || die "aws-iot-device-sdk examples missing after npm install"
    node -e 'require("aws-iot-device-sdk")' || die "aws-iot-device-sdk does not load"
    # Recompute: npm install may just have written the lock file.
    if [[ -f package-lock.json ]]; then
        node_want="$(fingerprint package.json package-lock.json) $(node --version)"
    fi
    printf '%s\n' "$node_want" > "$node_stamp"
    log "node_modules ready: aws-iot-device-sdk $(node -p 'require("aws-iot-device-sdk/package.json").version')"
fi
