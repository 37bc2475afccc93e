#!/usr/bin/env bash
# Debian's Tesseract with its English data, for the ingest's Clean Pixel Data option (the
# tesserocr binding in .venv loads eng.traineddata from /usr/share/tesseract-ocr/*/tessdata;
# no model is downloaded at run time), and the DejaVu fonts that the burned-in-text tests and
# bench/ingest/burned_in.py render text with. Idempotent.
set -euo pipefail
have() {
  compgen -G "/usr/share/tesseract-ocr/*/tessdata/eng.traineddata" >/dev/null &&
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && command -v tesseract >/dev/null
}
if have; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "tesseract.sh: Tesseract's English data or the DejaVu fonts are missing; install Debian's" \
       "'tesseract-ocr tesseract-ocr-eng fonts-dejavu-core' packages as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng fonts-dejavu-core >/dev/null
have
echo "tesseract.sh: installed $(tesseract --version 2>&1 | head -1) with eng data and DejaVu fonts"
