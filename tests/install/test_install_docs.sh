#!/usr/bin/env bash
# The generated man page and bash completion (TAP): the man page names every
# verb of src/cli/main.c with its help and every key of
# include/cldetr/config_keys.def with its default (this script reads those
# sources itself), has the sections a man page should, renders without a
# groff warning; the completion script parses, and completes verbs, options,
# --set keys and their values.
# Usage: test_install_docs.sh MAN_PAGE COMPLETION_SCRIPT (CLDETR_SOURCE_ROOT: the source tree)
man=$1 comp=$2 src=${CLDETR_SOURCE_ROOT:?}
n=0; failed=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
skip() { n=$((n+1)); echo "ok $n # skip $1"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# What the sources say: verbs (name and help) from main.c's table, keys and defaults from the .def.
sed -n '/verbs\[\] *= *{/,/^};/p' "$src/src/cli/main.c" |
  sed -n 's/^ *{"\([^"]*\)", *cmd_[a-z_]*, *"\(.*\)"},.*$/\1\t\2/p' >"$tmp/verbs"
sed -n 's/^X(\([a-z_]*\), *\([a-z_0-9]*\), *[A-Z]*, *"\([^"]*\)".*/\1.\2 = \3/p' \
  "$src/include/cldetr/config_keys.def" | sed 's/ = $/ = (empty)/' >"$tmp/keys"
nv=$(wc -l <"$tmp/verbs"); nk=$(wc -l <"$tmp/keys")
[ "$nv" -ge 10 ] && [ "$nk" -ge 50 ]; ok $? "read $nv verbs from main.c and $nk keys from config_keys.def"
[ "$nk" = "$(grep -c '^X(' "$src/include/cldetr/config_keys.def")" ]; ok $? "every X( line of config_keys.def gave a key"

# The page as plain text of its source: \- is -, font escapes and \& gone.
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\(em/--/g' "$man" >"$tmp/man.txt"
for s in NAME SYNOPSIS DESCRIPTION VERBS CONFIGURATION ENVIRONMENT FILES EXAMPLES; do
  grep -qx "\.SH $s" "$tmp/man.txt" || echo "missing section $s" >>"$tmp/miss"
done
[ ! -s "$tmp/miss" ]; ok $? "sections NAME SYNOPSIS DESCRIPTION VERBS CONFIGURATION ENVIRONMENT FILES EXAMPLES"
# VERBS: ".B name" then the help line of main.c
: >"$tmp/miss"
while IFS=$'\t' read -r name help; do
  grep -A1 -x "\.B $name" "$tmp/man.txt" | tail -1 | grep -qF -- "$help" || echo "$name" >>"$tmp/miss"
done <"$tmp/verbs"
ok $([ -s "$tmp/miss" ]; echo $((!$?))) "every verb of main.c is in VERBS with its help (missing: $(tr '\n' ' ' <"$tmp/miss"))"
: >"$tmp/miss"
while read -r line; do grep -qxF -- "$line" "$tmp/man.txt" || echo "$line" >>"$tmp/miss"; done <"$tmp/keys"
ok $([ -s "$tmp/miss" ]; echo $((!$?))) "every key of config_keys.def is in CONFIGURATION with its default (missing: $(head -3 "$tmp/miss" | tr '\n' ';'))"
for s in $(sed -n 's/^SECTION(\([a-z_]*\),.*/\1/p' "$src/include/cldetr/config_keys.def"); do
  grep -qx "\.SS \[$s\]" "$tmp/man.txt" || echo "$s" >>"$tmp/miss2"
done
[ ! -s "$tmp/miss2" ]; ok $? "keys grouped by section: a subsection per SECTION of the .def"
# ENVIRONMENT: the three of `cldetr --help`, and every CLDETR_ variable the sources read
env=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$tmp/man.txt")
# getenv, and cd_env_choice for the switches (CLDETR_GEMM_KERNELS=clblast|rows|tiles|auto, ...)
vars=$(grep -rhoE '(getenv|cd_env_choice)\("(CLDETR_[A-Z_]+|XDG_CACHE_HOME)"' "$src/src" | sed -E 's/.*\("(.*)"/\1/' |
       sort -u)
: >"$tmp/miss"
for v in CLDETR_DEVICE CLDETR_KERNEL_DIR XDG_CACHE_HOME $vars; do
  grep -qx "\.B $v" <<<"$env" || echo "$v" >>"$tmp/miss"
done
ok $([ -s "$tmp/miss" ]; echo $((!$?))) "ENVIRONMENT names every variable the sources read ($(echo $vars)) (missing: $(tr '\n' ' ' <"$tmp/miss"))"
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww -z "$man" >"$tmp/groff" 2>&1; rc=$?
  sed 's/^/# /' "$tmp/groff" | head -5
  [ $rc = 0 ] && [ ! -s "$tmp/groff" ]; ok $? "groff -man -ww renders it without a warning"
  groff -man -Tutf8 -P-cbou "$man" 2>/dev/null | grep -q "model.backbone = resnet50"; ok $? "the rendered page shows the keys and their defaults"
else
  skip "groff is not installed: the man page was not rendered"
  skip "groff is not installed: the rendered page was not read"
fi

# The completion script.
bash -n "$comp"; ok $? "the completion script parses (bash -n)"
# complete WORD... : what _cldetr offers for the command line, its last word under the cursor
complete_line() {
  bash -c 'source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _cldetr cldetr "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@"
}
bash -c 'source "$1"; complete -p cldetr' _ "$comp" 2>&1 | grep -q -- "-F _cldetr cldetr"
ok $? "sourcing it registers _cldetr for cldetr"
[ "$(complete_line cldetr tr)" = train ]; ok $? "cldetr tr<TAB> -> train"
[ "$(complete_line cldetr make | tr '\n' ' ')" = "make-shapes " ]; ok $? "cldetr make<TAB> -> make-shapes"
complete_line cldetr "" | grep -v '^--' | sort >"$tmp/got"
cut -f1 "$tmp/verbs" | sort >"$tmp/want"
cmp -s "$tmp/got" "$tmp/want"; ok $? "cldetr <TAB> offers exactly the verbs of main.c"
cut -d' ' -f1 "$tmp/keys" | sed 's/$/=/' | sort >"$tmp/want"
for verb in train config bench summary step; do
  complete_line cldetr "$verb" x.ini --set "" | sort >"$tmp/got"
  cmp -s "$tmp/got" "$tmp/want"; ok $? "cldetr $verb --set <TAB> offers every key of config_keys.def, with its ="
done
[ "$(complete_line cldetr train x.ini --set train.lr_b)" = "train.lr_backbone=" ]; ok $? "--set train.lr_b<TAB> -> train.lr_backbone="
# bash splits at '=' (COMP_WORDBREAKS): "model.backbone" "=" "resnet1"
[ "$(complete_line cldetr train x.ini --set model.backbone = resnet1 | tr '\n' ' ')" = "resnet18 resnet101 " ]
ok $? "--set model.backbone=resnet1<TAB> -> resnet18 resnet101 (the enum's words)"
[ "$(complete_line cldetr config --set log.chart = | tr '\n' ' ')" = "true false " ]; ok $? "--set log.chart=<TAB> -> true false"
[ "$(complete_line cldetr train --res)" = "--resume" ]; ok $? "cldetr train --res<TAB> -> --resume"
[ "$(complete_line cldetr predict --thr)" = "--threshold" ]; ok $? "cldetr predict --thr<TAB> -> --threshold"
mkdir -p "$tmp/files/runs" && touch "$tmp/files/shapes.ini"
[ "$(complete_line cldetr train "$tmp/files/sh")" = "$tmp/files/shapes.ini" ]; ok $? "a positional argument completes file names"
[ "$(complete_line cldetr eval "$tmp/files/ru")" = "$tmp/files/runs" ]; ok $? "and folder names"
echo "1..$n"
exit $failed
