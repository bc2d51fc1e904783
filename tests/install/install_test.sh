#!/usr/bin/env bash
# install_test.sh SOURCE_DIR BUILD_DIR: the Debian package as a user gets it (ctest label "install").
# Makes the .deb (scripts/package.sh --no-build), checks its declared dependencies (and, with apt,
# that they resolve on this Debian), unpacks it into an empty root (dpkg -x) and, from a folder
# outside the source tree with TMSPLAN_DATA unset: target-pick --version names the data folder
# next to the binaries; tmsplan-plan plans the 2 mm sample end to end with the unpacked tools;
# man finds skull-strip's page (man -M <root>/usr/share/man, the dpkg -x equivalent of MANPATH);
# bash completion offers options and library target names; a tool copied alone says where its
# data should be. Exit 77 (SKIP) when dpkg-deb/cpack/man is missing; 1 on a failed check.
set -euo pipefail
SRC=$(cd "$1" && pwd); BUILD=$(cd "$2" && pwd)
skip() { echo "install: SKIP: $*"; exit 77; }
fail() { echo "install: FAIL: $*" >&2; exit 1; }
for c in dpkg-deb dpkg-shlibdeps cpack man; do command -v $c >/dev/null || skip "$c not installed"; done
[ -f "$BUILD/samples/small-2mm.nii.gz" ] || fail "samples missing ($BUILD/samples): run make-samples (scripts/test.sh does)"
T=$(mktemp -d "${TMPDIR:-/tmp}/tmsplan-install.XXXXXX")
trap 'code=$?; [ $code -eq 0 ] && rm -rf "$T" || echo "install: kept $T" >&2; exit $code' EXIT
start=$SECONDS

deb=$(BUILD_DIR=$BUILD "$SRC/scripts/package.sh" --no-build "$T/dist" 2>"$T/package.log") \
  || { tail -n 20 "$T/package.log" >&2; fail "scripts/package.sh failed"; }
echo "install: built $(basename "$deb") in $((SECONDS - start)) s"
depends=$(dpkg-deb -f "$deb" Depends)
echo "install: Depends: $depends"
for p in mricron-data libinsighttoolkit5.2 libdeflate0 libpng16-16 zlib1g; do
  grep -Eq "(^|, )$p( |,|$)" <<<"$depends" || fail "Depends lacks $p"
done
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/target-pick ./usr/bin/tmsplan-plan ./usr/share/tmsplan/targets.json \
         ./usr/share/man/man1/skull-strip.1.gz ./usr/share/bash-completion/completions/target-pick \
         ./usr/share/doc/tmsplan/README.md ./usr/share/tmsplan/workflow/Snakefile; do
  grep -q " $f\$" <<<"$contents" || fail "package lacks $f"
done
for tool in "$SRC"/tools/*/main.cpp; do
  tool=$(basename "$(dirname "$tool")")
  grep -q " ./usr/bin/$tool\$" <<<"$contents" || fail "package lacks the tool $tool"
done
if command -v apt-get >/dev/null; then
  if apt-get install -s -q "$deb" >"$T/apt.log" 2>&1; then
    echo "install: apt-get install -s: dependencies resolve ($(grep -c '^Inst ' "$T/apt.log") package(s) to install)"
  elif grep -qi "lock" "$T/apt.log"; then
    echo "install: apt-get install -s not checked: apt is locked by another process"
  else
    tail -n 5 "$T/apt.log" >&2; fail "apt cannot install $(basename "$deb") here (dependencies)"
  fi
fi

ROOT=$T/root
mkdir -p "$ROOT"
dpkg-deb -x "$deb" "$ROOT"
mkdir -p "$T/elsewhere"
cd "$T/elsewhere"
unset TMSPLAN_DATA TMSPLAN_BIN BUILD_DIR
export PATH="$ROOT/usr/bin:$PATH"
[ "$(command -v target-pick)" = "$ROOT/usr/bin/target-pick" ] || fail "target-pick on the PATH is not the unpacked one"
version=$(target-pick --version)
echo "$version" | sed 's/^/install: /'
grep -qx "data: $ROOT/usr/share/tmsplan (installed)" <<<"$version" || fail "target-pick does not use the data next to it"
v2=$(TMSPLAN_DATA=$T/mydata target-pick --version | tail -1)
[ "$v2" = "data: $T/mydata (TMSPLAN_DATA)" ] || fail "TMSPLAN_DATA does not win ($v2)"

cp "$BUILD/samples/small-2mm.nii.gz" "$T/elsewhere/t1.nii.gz"
t0=$SECONDS
tmsplan-plan t1.nii.gz sub-01 --target M1_hand_left --efield-model sphere ${TMSPLAN_INSTALL_PLAN_ARGS:-} >"$T/plan.log" 2>&1 || { tail -n 10 "$T/plan.log" >&2; fail "tmsplan-plan failed"; }
echo "install: tmsplan-plan on the 2 mm sample: $((SECONDS - t0)) s"
for f in targets.json plan/report.html plan/protocol.json; do [ -s "sub-01/$f" ] || fail "plan lacks sub-01/$f"; done
grep -q "M1_hand_left" sub-01/targets.json || fail "targets.json lacks M1_hand_left"
! grep -rq "$SRC/data" sub-01/*.json sub-01/plan/*.json || fail "a record names the source tree's data folder"

# man: the installed page (MANPATH-like -M; man -l on the file is the same page).
MANWIDTH=80 man -M "$ROOT/usr/share/man" -P cat skull-strip >"$T/man.txt" 2>"$T/man.err" || { cat "$T/man.err" >&2; fail "man skull-strip failed"; }
grep -q "skull-strip" "$T/man.txt" && grep -q -- "--threads" "$T/man.txt" || fail "man skull-strip: page lacks the tool's options"
echo "install: man skull-strip: $(grep -m1 -A1 '^NAME' "$T/man.txt" | tail -1 | sed 's/^ *//')"

# bash completion: options and library target names.
comp=$(bash -c '
  source "$1/usr/share/bash-completion/completions/target-pick"
  COMP_WORDS=(target-pick --target M1); COMP_CWORD=2; _tmsplan; echo "${COMPREPLY[*]}"
  COMP_WORDS=(target-pick --ta); COMP_CWORD=1; _tmsplan; echo "${COMPREPLY[*]}"' _ "$ROOT")
echo "$comp" | sed 's/^/install: completion: /'
grep -q "M1_hand_left" <<<"$comp" && grep -q "M1_hand_right" <<<"$comp" || fail "completion lacks target names"
grep -q -- "--target" <<<"$comp" || fail "completion lacks options"

# A tool copied alone: no data, and it says where it looked.
mkdir -p "$T/lonely/bin" "$T/lonely/s"
cp "$ROOT/usr/bin/target-pick" "$T/lonely/bin/"
"$T/lonely/bin/target-pick" --version | grep -qx "data: $T/lonely/share/tmsplan (missing)" || fail "a lone tool does not name the expected data folder"
echo "install: passed in $((SECONDS - start)) s"
