#!/usr/bin/env python3
"""Summarise truncguard JSON logs (TRUNCGUARD_LOG_FORMAT=json, truncguard --json).

    truncguard-summary.py LOG...     (files; "-" or none: standard input)

Prints a Markdown table of the files that were protected, then every write
that could not be protected. Exit status: 0 if every write was protected,
1 if some could not be (a cannot_protect event), 2 if a log can't be read
or a line is not a JSON object. Text log lines (not starting with "{") are
skipped with a count, so a mixed stderr capture works too. A pattern that
matched no file (the shell passes `tg.*` as it is) counts as no log: a
process writes its FILE.PID at its first line, so a deploy that protected
nothing leaves none. But where the pattern's directory is missing or can't
be written, the processes logged to their standard error instead ("cannot
open the log file"): the counts would not be the truth, so that is said and
the exit status is 2.
"""
import json
import os
import sys


def unwritable(pattern):
    """Why the directory of a pattern that matched nothing can't hold a log, or None."""
    d = os.path.dirname(pattern) or "."
    if not os.path.isdir(d):
        return f"{d} is not a directory"
    if not os.access(d, os.W_OK | os.X_OK):
        return f"{d} can't be written"
    return None


def main(paths):
    events, skipped, lost = [], 0, []
    for path in paths or ["-"]:
        if path != "-" and any(c in path for c in "*?[") and not os.path.lexists(path):
            why = unwritable(path)
            if why:
                lost.append(why)
            continue
        try:
            stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
        except OSError as e:
            print(f"truncguard-summary: cannot read {path}: {e.strerror}", file=sys.stderr)
            return 2
        with stream:
            for n, line in enumerate(stream, 1):
                if not line.startswith("{"):
                    skipped += 1
                    continue
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError as e:
                    print(f"truncguard-summary: {path}:{n}: not JSON ({e.msg})", file=sys.stderr)
                    return 2

    replaced = [e for e in events if e.get("event") in ("replaced", "would_replace")]
    failed = [e for e in events if e.get("event") == "cannot_protect"]
    for why in lost:
        print(f"truncguard: the log could not be written ({why}): its lines went to standard error "
              "and are not counted here")
    print(f"truncguard: {len(replaced)} file(s) protected, {len(failed)} write(s) could not be protected"
          + (" (in the logs that could be read)" if lost else ""))
    if replaced:
        print()
        print("| file | mode | inode | running it |")
        print("|---|---|---|---|")
        for e in replaced:
            who = ", ".join(f"{m['pid']} ({m['comm']})" for m in e.get("mapped_by", []))
            more = e.get("mapped_by_total", 0) - len(e.get("mapped_by", []))
            if more > 0:
                who += f" and {more} more"
            if not who:
                who = e.get("reason", "")
            inode = f"{e.get('old_ino')} -> {e.get('new_ino', '(dry run)')}"
            print(f"| `{e.get('file')}` | {e.get('mode')} | {inode} | {who} |")
    for e in failed:
        print()
        print(f"NOT PROTECTED: {e.get('file')}: {e.get('step')}: {e.get('error')} "
              f"(fallback: {e.get('fallback')}{'; ' + e['message'] if 'message' in e else ''})")
    if skipped:
        print(f"\n({skipped} line(s) that are not JSON skipped)")
    return 2 if lost else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
