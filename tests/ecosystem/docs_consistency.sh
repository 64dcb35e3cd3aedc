#!/bin/bash
# The documentation says what the code does: every option of the command
# (from its --help) is in truncguard(1); every TRUNCGUARD_* setting and each
# of its values is in truncguard(7); every JSON field, event, note key and
# fallback value that shim/log.cpp and the guard can write is in truncguard(7)
# and docs/ci.md; every field of the who/stale JSON is in truncguard(7); the
# Debian changelog has the project's version. When the code grows a field or
# a setting, this test names what the documentation lacks.
. "$(dirname "$0")/../e2e/lib.sh"
need_shim
SRC=${TG_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

# The man pages as text: roff's \- is a plain hyphen, \e a backslash.
page() { sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\(dq/"/g' "$SRC/man/$1.in"; }
MAN1=$(page truncguard.1)
MAN7=$(page truncguard.7)
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
shorts=$("$TG_CMD" --help | grep -oE '^  -[a-zA-Z],' | tr -d ' ,' | sort -u)
# shellcheck disable=SC2086
need "truncguard(1)" "$MAN1" $shorts

# Settings and their values.
vars=$(grep -ohE 'TRUNCGUARD_[A-Z_]+' "$SRC/shim/settings.cpp" | sort -u)
[ -n "$vars" ] || fail "no TRUNCGUARD_ variables found in shim/settings.cpp"
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $vars
# shellcheck disable=SC2086
need "truncguard(1)" "$MAN1" $vars
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

# The JSON of who and stale.
wfields=$(grep -ohP '\\"\K[a-z_]+(?=\\":)' "$SRC/shim/inspect_cmd.cpp" | sort -u)
[ -n "$wfields" ] || fail "no JSON fields found in shim/inspect_cmd.cpp"
# shellcheck disable=SC2086
need "truncguard(7)" "$MAN7" $wfields
need "truncguard(7)" "$MAN7" current replaced exec data deleted missing

# Exit statuses.
need "truncguard(1)" "$MAN1" 125 126 127
for sub in who stale; do
  "$TG_CMD" $sub --help | grep -q "3 none found" || missing+=("truncguard $sub --help lacks exit status 3")
done

if [ ${#missing[@]} -gt 0 ]; then
  printf '  %s\n' "${missing[@]}" >&2
  fail "${#missing[@]} things the code has are not documented (above): update man/*.in and docs/ci.md"
fi
ok "documented: $(wc -w <<<"$opts $shorts") options, $(wc -w <<<"$vars") settings, $(wc -w <<<"$values $categories") values, $(wc -w <<<"$fields") JSON fields, $(wc -w <<<"$events") events, $(wc -w <<<"$notes") note keys, $(wc -w <<<"$wfields") who/stale fields"

# The package version follows the project's.
if [ -f "$SRC/debian/changelog" ]; then
  deb=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$SRC/debian/changelog")
  proj=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -n 1)
  [ "$deb" = "$proj" ] || fail "debian/changelog is at $deb, meson.build at $proj: add a changelog entry"
  ok "debian/changelog and meson.build agree: $proj"
fi
