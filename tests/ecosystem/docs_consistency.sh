#!/bin/bash
# The documentation says what the code does: every option of the command
# (from its --help) is in truncguard(1), and every option a documented
# command line gives is accepted with its value; every TRUNCGUARD_* setting and each
# of its values is in truncguard(7); every JSON field, event, note key and
# fallback value that shim/log.cpp and the guard can write is in truncguard(7)
# and docs/ci.md; every field of the who/stale JSON is in truncguard(7); every
# TRUNCGUARD_* variable the code reads is in README.md and truncguard(7), each
# setting's values in its own entry of truncguard(7) and row of the README's
# table, and the settings in truncguard(1)'s ENVIRONMENT; the "mapped
# executable by" sentences are in README.md and truncguard(7), and the reasons
# a file counts as in use in truncguard(7); every function the shim exports and
# every number its syscall() takes in are in the README's list of what it
# intercepts; every package scripts/setup.sh installs is in the README's list
# of them; every source file of shim/ is in the README's Layout table and every
# libFuzzer target in its Testing section; every test docs/guarantees.md names exists; no roff line runs words together; the Debian changelog has the
# project's version. When the code grows a field or a setting, this test
# names what the documentation lacks.
. "$(dirname "$0")/../e2e/lib.sh"
need_shim
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

# The man pages as text: roff's \- is a plain hyphen, \e a backslash.
page() { sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\(dq/"/g' "$SRC/man/$1.in"; }
MAN1=$(page truncguard.1)
MAN7=$(page truncguard.7)
README=$(cat "$SRC/README.md")
CI=$(cat "$SRC/docs/ci.md")
missing=()
# need WHERE-NAME TEXT WORD...: each WORD appears in TEXT (as a whole word).
need() {
  local where=$1 text=$2 w
  shift 2
  for w in "$@"; do
    grep -qE -- "(^|[^A-Za-z0-9_-])$(sed 's/[.[\*^$+?(){}|]/\\&/g' <<<"$w")([^A-Za-z0-9_-]|\$)" <<<"$text" ||
      missing+=("$where lacks \"$w\"")
  done
}

# Options of the command and the subcommands.
opts=$( { "$TG_CMD" --help; "$TG_CMD" who --help; "$TG_CMD" stale --help; } | grep -oE -- '--[a-z][a-z-]+' | sort -u)
[ -n "$opts" ] || fail "no options found in --help"
# shellcheck disable=SC2086
need "truncguard(1)" "$MAN1" $opts
# Every long option the code accepts (its getopt tables) is in --help, so in the man page.
coded=$(cat "$SRC/shim/truncguard.cpp" "$SRC/shim/inspect_cmd.cpp" |
        grep -oP '^\s*\{"\K[a-z-]+(?=", (required|no|optional)_argument)' | sed 's/^/--/' | sort -u)
[ -n "$coded" ] || fail "no getopt tables found in shim/truncguard.cpp and shim/inspect_cmd.cpp"
# shellcheck disable=SC2086
need "truncguard --help (or who/stale --help)" "$opts" $coded
shorts=$("$TG_CMD" --help | grep -oE '^  -[a-zA-Z],' | tr -d ' ,' | sort -u)
# shellcheck disable=SC2086
need "truncguard(1)" "$MAN1" $shorts
# The other way round: every option a documented command line gives
# (`truncguard --mode=dry-run --debug=decisions,rewrites make install` in
# --help, the man pages, README, docs/, examples/ci/) is accepted with the
# value it shows: the command runs `true` with it and exits 0 (a shell
# variable in a value, as in --log="$PWD/tg", stands for a path).
doc_opts=$( { cat "$SRC/README.md" "$SRC"/docs/*.md "$SRC"/examples/ci/*; echo "$MAN1"; echo "$MAN7"; "$TG_CMD" --help; } |
            grep -oE 'truncguard( +-[^ ]+)+' | sed 's/^truncguard//' | tr ' ' '\n' | grep -E '^-.' | grep -vx -- '--' |
            sed -E -e 's/[`)".:;,]+$//' -e 's/"//g' -e "s/'//g" -e 's|=.*\$.*|=/tmp/doc-option-value|' | sort -u)
[ -n "$doc_opts" ] || fail "no truncguard command lines found in the documentation"
while IFS= read -r o; do
  [ "$o" = "--log=/tmp/doc-option-value" ] && o=--log=$T/doclog
  # An ASan build of the library can't be an audit module (README).
  [ "$o" = --audit ] && shim_has_asan && continue
  "$TG_CMD" "$o" true >/dev/null 2>"$T/doc_opt.err" ||
    missing+=("the documented 'truncguard $o' is refused: $(head -n 1 "$T/doc_opt.err")")
done <<<"$doc_opts"

# Settings and their values.
vars=$(grep -ohE 'TRUNCGUARD_[A-Z_]+' "$SRC/shim/settings.cpp" | sort -u)
[ -n "$vars" ] || fail "no TRUNCGUARD_ variables found in shim/settings.cpp"
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $vars
# shellcheck disable=SC2086
need "truncguard(1) ENVIRONMENT" "$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' <<<"$MAN1")" $vars
# Every variable the code reads anywhere (the settings, atomic mode's hand-over).
all_vars=$(cat "$SRC"/shim/*.cpp "$SRC"/shim/*.hpp | grep -oE '"TRUNCGUARD_[A-Z_]+=?"' | tr -d '"=' | sort -u)
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $all_vars
# shellcheck disable=SC2086
need "README.md" "$README" $all_vars
# Each setting's values in its own entry of truncguard(7) (from ".B VAR" to the
# next ".TP") and its row of the README's settings table.
for var_parse in SCOPE:scope MODE:mode ON_FAIL:on_fail RELOAD:reload LOG_FORMAT:log_format; do
  var=TRUNCGUARD_${var_parse%%:*} parse=parse_${var_parse#*:}
  type=$(grep -oP "^bool $parse\((const char\* v, )\K\w+" "$SRC/shim/settings.cpp")
  [ -n "$type" ] || fail "no $parse in shim/settings.cpp"
  vals=$(awk -v head="const char* to_string($type " 'index($0, head) == 1 { on = 1 }
                on { print } on && /}$/ && (/^}/ || /\{ return/) { exit }' "$SRC/shim/settings.cpp" |
         grep -oP '"\K[a-z-]+(?=")')
  [ -n "$vals" ] || fail "no values of $type found in shim/settings.cpp"
  # shellcheck disable=SC2086
  need "truncguard(7)'s $var entry" "$(sed -n "/^\.B $var\$/,/^\.TP/p" <<<"$MAN7")" $vals
  # shellcheck disable=SC2086
  need "README.md's $var row" "$(grep "^| \`$var\`" <<<"$README")" $vals
done
values=$(grep -ohP 'case (Scope|Mode|OnFail|LogFormat)::\w+: return "\K[a-z-]+' "$SRC/shim/settings.cpp" | sort -u)
categories=$(grep -ohP '^\s*\{"\K[a-z]+(?=", k)' "$SRC/shim/settings.cpp" | sort -u)
[ -n "$values" ] && [ -n "$categories" ] || fail "no setting values found in shim/settings.cpp"
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $values $categories
# shellcheck disable=SC2086
need "truncguard --help" "$("$TG_CMD" --help)" $values $categories

# The JSON log: field names, events, note keys, fallbacks.
fields=$(grep -ohP '\bj\.(str|num|boolean|begin_array)\("\K[a-z_]+' "$SRC/shim/log.cpp" | sort -u)
events=$( { grep -ohP 'case EventKind::\w+: return "\K[a-z_]+' "$SRC/shim/log.cpp"
            grep -ohP 'j\.str\("event", "\K[a-z_]+' "$SRC/shim/log.cpp"; } | sort -u)
notes=$(grep -ohP '\bnote\([^,()]+, "\K[a-z_]+' "$SRC"/shim/*.cpp | sort -u)
fallbacks=$(grep -h 'j.str("fallback"' "$SRC/shim/log.cpp" | grep -oP '"\K[a-z]+(?=")' | grep -vx fallback | sort -u)
[ -n "$fields" ] && [ -n "$events" ] && [ -n "$notes" ] && [ -n "$fallbacks" ] ||
  fail "could not read the JSON vocabulary from shim/log.cpp (fields: $fields; events: $events; notes: $notes)"
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $fields $events $notes $fallbacks
# shellcheck disable=SC2086
need "docs/ci.md" "$CI" $fields $events $notes $fallbacks
# Each note key in the lists of note keys themselves, not only somewhere in
# the text (`times`, a common word, passed on "Mode, times and extended
# attributes" while truncguard(7)'s list lacked it): truncguard(7)'s `note`
# entry (from its ".B note" twice to the next .TP) and docs/ci.md's `note` row.
MAN7_NOTES=$(awk 'prev == ".B note" && $0 == ".B note" { on = 1 } on && $0 == ".TP" { exit } on; { prev = $0 }' <<<"$MAN7")
CI_NOTES=$(grep '^| `note` | `note` |' <<<"$CI")
[ -n "$MAN7_NOTES" ] && [ -n "$CI_NOTES" ] ||
  fail "could not find the lists of note keys (truncguard(7): ${MAN7_NOTES:0:40}; docs/ci.md: ${CI_NOTES:0:40})"
# shellcheck disable=SC2086
need "truncguard(7)'s list of note keys" "$MAN7_NOTES" $notes
# shellcheck disable=SC2086
need "docs/ci.md's list of note keys" "$CI_NOTES" $notes

# The JSON of who and stale.
wfields=$(grep -ohP '\\"\K[a-z_]+(?=\\":)' "$SRC/shim/inspect_cmd.cpp" | sort -u)
[ -n "$wfields" ] || fail "no JSON fields found in shim/inspect_cmd.cpp"
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $wfields
need "truncguard(7)" "$MAN7" current replaced exec data deleted missing

# Why a file counted as mapped without a process found: the sentences of the
# text log (up to the first printf conversion), whitespace as one space.
flat() { tr -s ' \n' '  ' <<<"$1"; }
while IFS= read -r sentence; do
  grep -qF -- "$sentence" <<<"$(flat "$README")" || missing+=("README.md lacks the log's \"$sentence\"")
  grep -qF -- "$sentence" <<<"$(flat "$MAN7")" || missing+=("truncguard(7) lacks the log's \"$sentence\"")
done < <(grep -oP 'add\("\K(nobody|no readable|no process|this process)[^%"]*' "$SRC/shim/guard.cpp" | sed 's/ *$//')

# Why a file counted as in use (the JSON "reason" of a replaced line): the
# text of each reason after "// act" in shim/decision.hpp, in truncguard(7).
acting=$(sed -n '/^enum class Reason/,/^};/p' "$SRC/shim/decision.hpp" | sed -n '/\/\/ act$/,$p' | grep -oP '^\s*\K\w+(?=,)')
[ -n "$acting" ] || fail "no acting reasons found in shim/decision.hpp"
for r in $acting; do
  text=$(awk -v c="case Reason::$r:" 'index($0, c) { on = 1 } on { print } on && /;$/ { exit }' "$SRC/shim/decision.cpp" |
         grep -oP '"\K[^"]*(?=")' | tr -d '\n')
  [ -n "$text" ] || { missing+=("shim/decision.cpp has no text for Reason::$r"); continue; }
  grep -qF -- "$text" <<<"$(flat "$MAN7")" || missing+=("truncguard(7) lacks the reason \"$text\"")
done

# What the library intercepts: every function it exports (the loader binds the
# program's calls to them) and every number its syscall() takes in, named in
# the README's list ("The library intercepts").
command -v nm >/dev/null || fail "nm (binutils) is needed to list the functions the shim exports"
exported=$(nm -D --defined-only "$TG_SHIM" | awk '$2 ~ /^[TWi]$/ { sub(/@.*/, "", $3); print $3 }' |
           grep -vx '__asan_default_options' | sort -u)
sysnos=$(sed -n '/ long routed_syscall(/,/^}/p' "$SRC/shim/interpose.cpp" | grep -oP 'case \KSYS_\w+' | sort -u)
[ -n "$exported" ] && [ -n "$sysnos" ] || fail "no exported functions in $TG_SHIM or syscall() numbers in shim/interpose.cpp"
# shellcheck disable=SC2086
need "README.md's \"The library intercepts\" list" "$(sed -n '/^The library intercepts/,/^Each call becomes/p' <<<"$README")" \
  $exported $sysnos

# The packages scripts/setup.sh installs, in the README's list of them (not
# only named somewhere else in it).
pkgs=$(sed -n '/^packages=(/,/^)/p' "$SRC/scripts/setup.sh" | sed -e '1d' -e '$d' -e 's/#.*//')
[ -n "$pkgs" ] || fail "no package list found in scripts/setup.sh"
# shellcheck disable=SC2086
need "README.md's list of packages" "$(sed -n '/^Both first install the Debian packages/,/^Once they are there/p' <<<"$README")" $pkgs

# Every source file of the library and the command in the README's Layout
# table, and every libFuzzer target of scripts/fuzz.sh in its paragraph of the
# Testing section (as the target's name or its subject's word).
shim_files=$(cd "$SRC" && ls shim/*.cpp shim/*.ld)
# shellcheck disable=SC2086
need "README.md's Layout table" "$(sed -n '/^## Layout/,$p' <<<"$README")" $shim_files
fuzz_targets=$(sed -n 's/^\[ \${#targets\[@\]} -gt 0 \] || targets=(\(.*\))$/\1/p' "$SRC/scripts/fuzz.sh")
[ -n "$fuzz_targets" ] || fail "no list of targets found in scripts/fuzz.sh"
fuzz_par=$(sed -n '/^- `scripts\/fuzz.sh` builds libFuzzer targets/,/^- `scripts\/bench.sh`/p' <<<"$README")
for t in $fuzz_targets; do
  w=$t
  [ "$t" = handover ] && w=hand-over
  need "README.md's scripts/fuzz.sh paragraph (target $t)" "$fuzz_par" "$w"
done

# Every test docs/guarantees.md names (the last column of its tables): a meson
# test, or a GoogleTest Suite.Name (Suite.Prefix* for several).
tests_json=$TG_BUILD/meson-info/intro-tests.json
[ -f "$tests_json" ] || fail "no $tests_json: the build's list of tests"
mtests=$(grep -oP '"name": "\K[^"]+' "$tests_json" | sort -u)
gtests=$(cat "$SRC"/tests/*/*.cpp | grep -oP '^TEST(_F)?\(\s*\K\w+,\s*\w+' | tr -d ' ' | tr , .)
named=$(grep '^|' "$SRC/docs/guarantees.md" | awk -F'|' 'NF >= 4 { print $(NF - 1) }' | grep -oE '`[^`]+`' | tr -d '`' | sort -u)
[ -n "$named" ] && [ -n "$gtests" ] || fail "no tests found in docs/guarantees.md or tests/*/*.cpp"
for t in $named; do
  case $t in
    *.*\*) grep -q "^${t%\*}" <<<"$gtests" ;;
    *.*) grep -qx "$t" <<<"$gtests" ;;
    *\*) grep -q "^${t%\*}" <<<"$mtests" ;;
    expect_*) grep -q "^$t()" "$SRC/tests/e2e/lib.sh" ;;  # "all of the above (expect_version)"
    *) grep -qx "$t" <<<"$mtests" || grep -qx "$t" < <(sed 's/\..*//' <<<"$gtests") ;;
  esac || missing+=("docs/guarantees.md names the test \"$t\", which does not exist")
done

# roff: a font-alternating macro (.BR, .IR...) alternates between its
# arguments with no space; two plain words in a row there run together in the
# page ("exportsits"). And ".B WORD ," makes the comma bold, spaced off.
for f in truncguard.1 truncguard.7; do
  while IFS= read -r line; do
    missing+=("man/$f.in runs words together: $line")
  done < <(grep -E '^\.(BR|RB|IR|RI|BI|IB) ' "$SRC/man/$f.in" | grep -v '"' |
           grep -E ' [a-z]{2,}[,.;:]? [a-z]{2,}( |$)')
  while IFS= read -r line; do
    missing+=("man/$f.in sets punctuation in bold, after a space (use .BR): $line")
  done < <(grep -E '^\.[BI] [^ "]+ [,.;:)]+$' "$SRC/man/$f.in")
done

# Exit statuses.
need "truncguard(1)" "$MAN1" 125 126 127
for sub in who stale; do
  "$TG_CMD" $sub --help | grep -q "3 none found" || missing+=("truncguard $sub --help lacks exit status 3")
done

if [ ${#missing[@]} -gt 0 ]; then
  printf '  %s\n' "${missing[@]}" >&2
  fail "${#missing[@]} things the code has are not documented (above): update README.md, man/*.in, docs/ci.md or docs/guarantees.md"
fi
ok "documented: $(wc -w <<<"$opts $shorts") options, $(wc -w <<<"$vars") settings, $(wc -w <<<"$values $categories") values, $(wc -w <<<"$fields") JSON fields, $(wc -w <<<"$events") events, $(wc -w <<<"$notes") note keys, $(wc -w <<<"$wfields") who/stale fields"

# The package version follows the project's.
if [ -f "$SRC/debian/changelog" ]; then
  deb=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$SRC/debian/changelog")
  proj=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -n 1)
  [ "$deb" = "$proj" ] || fail "debian/changelog is at $deb, meson.build at $proj: add a changelog entry"
  ok "debian/changelog and meson.build agree: $proj"
fi
