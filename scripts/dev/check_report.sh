#!/usr/bin/env bash
# Checks a protocol-export report in a real browser (headless Chromium from Debian):
#   1. static: every <img> is a data:image/png;base64 URI whose bytes are a complete PNG, and the
#      page references nothing outside itself (no http(s)://, no src= other than data:, no url(),
#      no <link>, no <script>);
#   2. in the browser: every image decoded (complete, naturalWidth > 0), checked by a temporary copy
#      of the page with a small script appended (the report itself has no script);
#   3. a screenshot of the page (default 1200 x 3000) to look at;
#   4. a screenshot at A4 print width (760 px) with the print stylesheet applied (SCREENSHOT with
#      "-print" before .png), and the page printed to PDF (page count).
# Usage: scripts/dev/check_report.sh REPORT.html [SCREENSHOT.png] [WIDTH,HEIGHT]
# Not part of the unit tests. Installs the Debian package chromium when it is missing (needs root).
set -euo pipefail

report=${1:?usage: check_report.sh REPORT.html [SCREENSHOT.png] [WIDTH,HEIGHT]}
shot=${2:-/tmp/tmsplan_report.png}
size=${3:-1200,3000}
[[ -f $report ]] || { echo "check_report: no such file: $report" >&2; exit 1; }
report=$(realpath "$report")

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
  echo "check_report: chromium not found; installing the Debian package" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
  browser=$(command -v chromium)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$work/profile")

# 1. Static checks.
python3 - "$report" <<'EOF'
import base64, re, struct, sys, zlib
html = open(sys.argv[1], encoding="utf-8").read()
problems = []
tags = re.findall(r"<img\b[^>]*>", html)
for i, tag in enumerate(tags):
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag)
    if not m:
        problems.append(f"image {i}: not a data:image/png;base64 URI: {tag[:80]}")
        continue
    png = base64.b64decode(m.group(1), validate=True)
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        problems.append(f"image {i}: not a PNG")
        continue
    pos, idat, chunks = 8, b"", []
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(kind + data) & 0xFFFFFFFF != crc:
            problems.append(f"image {i}: bad CRC in chunk {kind}")
        chunks.append(kind)
        if kind == b"IDAT":
            idat += data
        pos += 12 + length
    if chunks[:1] != [b"IHDR"] or chunks[-1:] != [b"IEND"]:
        problems.append(f"image {i}: chunks {chunks[:3]}...{chunks[-1:]}")
    else:
        w, h = struct.unpack(">II", png[16:24])
        zlib.decompress(idat)
        print(f"image {i}: {w} x {h} PNG, {len(png)} bytes")
for pattern, what in [(r"https?://", "http(s) reference"), (r"\bsrc=\"(?!data:)", "src not a data URI"),
                      (r"url\(", "CSS url()"), (r"<link\b", "<link>"), (r"<script\b", "<script>"),
                      (r"@import", "@import")]:
    for m in re.finditer(pattern, html):
        problems.append(f"{what} at offset {m.start()}: {html[max(0, m.start() - 40):m.start() + 40]!r}")
print(f"static: {len(tags)} images, {len(html)} bytes, {len(problems)} problems")
for p in problems:
    print("  " + p)
sys.exit(1 if problems or not tags else 0)
EOF

# 2. In the browser: did every image decode?
probe="$work/probe.html"
cat "$report" > "$probe"
cat >> "$probe" <<'EOF'
<script>
window.addEventListener('load', function () {
  var imgs = document.images, bad = [];
  for (var i = 0; i < imgs.length; i++)
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(i + ':' + imgs[i].alt);
  var d = document.createElement('pre');
  d.textContent = 'TMSPLAN-IMAGES ' + imgs.length + ' BROKEN ' + bad.length + ' ' + bad.join(';') + ' END';
  document.body.appendChild(d);
});
</script>
EOF
result=$(timeout 120 "$browser" "${flags[@]}" --virtual-time-budget=10000 --dump-dom "file://$probe" 2>/dev/null |
         grep -o 'TMSPLAN-IMAGES [0-9]* BROKEN [0-9]* [^<]* END' || true)
echo "browser: ${result:-no result from chromium}"
[[ $result =~ TMSPLAN-IMAGES\ ([0-9]+)\ BROKEN\ 0\  ]] && (( BASH_REMATCH[1] > 0 )) ||
  { echo "check_report: images missing or broken in the browser" >&2; exit 1; }

# 3. Screenshot.
rm -f "$shot"
timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --screenshot="$shot" --window-size="$size" \
  "file://$report" 2>/dev/null || true
[[ -s $shot ]] || { echo "check_report: chromium wrote no screenshot" >&2; exit 1; }
echo "screenshot: $shot ($(stat -c %s "$shot") bytes, window $size)"

# 4. Print width: a copy whose print rules apply on screen, at A4's printable width (190 mm).
print_shot="${shot%.png}-print.png"
sed 's/@media print/@media all/' "$report" > "$work/print.html"
rm -f "$print_shot"
timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --screenshot="$print_shot" \
  --window-size="760,${size#*,}" "file://$work/print.html" 2>/dev/null || true
[[ -s $print_shot ]] || { echo "check_report: chromium wrote no print-width screenshot" >&2; exit 1; }
echo "print-width screenshot: $print_shot (760 px wide, print stylesheet applied)"
timeout 120 "$browser" "${flags[@]}" --no-pdf-header-footer --print-to-pdf="$work/report.pdf" \
  "file://$report" 2>/dev/null || true
if [[ -s $work/report.pdf ]]; then
  echo "pdf: $(grep -c '/Type */Page[^s]' "$work/report.pdf" || true) A4 pages"
fi
