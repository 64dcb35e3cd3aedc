#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/ (scripts/fuzz.sh starts there).

The inputs follow FuzzedDataProvider's layout: strings are read from the
front (a backslash followed by another character ends one), integers and
booleans from the back. Run from the repository root: python3 fuzz/make_seeds.py
"""
import os

def put(target, name, data):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def strings(*values):
    return b"".join(v + b"\\ " for v in values)

# settings: six values (SCOPE MODE ON_FAIL LOG_FORMAT DEBUG LOG), then from
# the back: secure, present[0..5], bad_len.
def settings(values, present=(1, 1, 1, 1, 1, 1), secure=0, bad_len=64):
    tail = bytes([bad_len]) + bytes(reversed(present)) + bytes([secure])
    return strings(*values) + tail

put("settings", "defaults", settings([b"system", b"replace", b"etxtbsy", b"text", b"rewrites", b"/tmp/tg-log"]))
put("settings", "all-known", settings([b"elf", b"atomic", b"truncate", b"json", b"all,help", b"/var/log/tg"]))
put("settings", "unknown", settings([b"everything", b"rename", b"panic", b"xml", b"rewrites,,bogus:decisions", b"x"]))
put("settings", "secure-log", settings([b"self", b"dry-run", b"etxtbsy", b"text", b"none", b"/etc/passwd"], secure=1))
put("settings", "control-bytes", settings([b"s\x1b[2Jcope", b"mo\nde", b"\x7f", b"j\tson", b"rewrites \x01", b"l"], bad_len=3))
put("settings", "long-log", settings([b"", b"", b"", b"", b"", b"/" + b"a" * 4200], present=(0, 0, 0, 0, 0, 1)))

# maps: the text, then from the back: target mode, dev major, dev minor, ino, chunk count and sizes.
maps = (b"55d4c2a00000-55d4c2a02000 r--p 00000000 fe:01 1311849 /usr/bin/cat\n"
        b"55d4c2a02000-55d4c2a07000 r-xp 00002000 fe:01 1311849 /usr/bin/cat\n"
        b"7f1e3c000000-7f1e3c021000 rw-p 00000000 00:00 0 \n"
        b"7f1e3c2a8000-7f1e3c2ce000 r-xp 00028000 08:12 2883598 /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)\n"
        b"7ffd4a9e0000-7ffd4a9e2000 r-xp 00000000 00:00 0                          [vdso]\n"
        b"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]")
put("maps", "self-maps", maps + bytes([3, 1, 7, 64, 0, 0, 0, 0, 0, 0, 0, 0, 1, 254, 1]))
put("maps", "one-line-chunks", maps.split(b"\n")[1] + b"\n" + bytes([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]))
put("maps", "long-path", b"400000-401000 r-xp 00000000 08:01 42 /" + b"p" * 900 + b"\n" + maps + bytes([5, 200, 3, 0, 0, 0, 0, 0, 0, 0, 0, 42, 8, 1, 1]))
put("maps", "malformed", b"zz-10 r-xp 0 8:1 x\n1-2\n-\n1-2 rwxs\n1-2 r-xp 0 0:0 \n" + bytes([2, 9, 9, 9, 9]))

# escape: two bytes of output size, then the string.
def esc(size, s):
    return bytes([size >> 8, size & 255]) + s
put("escape", "plain", esc(1536, b"/opt/app/lib/libfoo.so"))
put("escape", "controls", esc(64, b"odd\nname\t\r\\\x01\x7f\x1b[31m"))
put("escape", "utf8", esc(40, "caf\u00e9/\u65e5\u672c/\U0001f600.so".encode()))
put("escape", "invalid-utf8", esc(100, b"\xff\xfe\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80\xc3"))
put("escape", "tiny", esc(4, b"abcdef"))
put("escape", "cut-escape", esc(9, b"ab\ncd\x01ef"))

# log: from the back: json, kind, (mappers, with_message); from the front: file, comm1, comm2.
def log(json, kind, file, comm1=b"victim", comm2=b"cp", mappers=1, message=0):
    return strings(file, comm1, comm2) + bytes([message, mappers, kind, json])
put("log", "replaced-text", log(0, 1, b"/opt/app/lib/libfoo.so"))
put("log", "replaced-json", log(1, 1, b"/opt/app/lib/libfoo.so", mappers=2))
put("log", "odd-name-json", log(1, 4, b"odd\nname\xff\"quote\\.so", comm1=b"a\"b\nc"))
put("log", "decision-text", log(0, 0, b"/tmp/\x1b]0;title\x07.so"))
put("log", "long-json", log(1, 3, b"/" + b"\x01" * 3000))

# handover: one entry of TRUNCGUARD_PENDING (the bytes up to the first ';').
def hexs(b):
    return b.hex().encode()
put("handover", "one", b"7:8:1311849:" + hexs(b"libfoo.so") + b":" + hexs(b"/opt/app/lib/libfoo.so") + b";")
put("handover", "synced-two-fds", b"7,12:3:42s:" + hexs(b"lib.so") + b":" + hexs(b"lib.so") + b";")
put("handover", "odd-name", b"5:4:9:" + hexs(b"odd\nname\xff.so") + b":" + hexs(b"/t/odd\nname\xff.so") + b";")
put("handover", "overflow", b"4294967303:8:18446744073709551616:" + hexs(b"x") + b":" + hexs(b"/x") + b";")
put("handover", "six-fields", b"7:8:1:" + hexs(b"x") + b":" + hexs(b"/x") + b":s;")

# fdinfo: a first byte (bit 0: cut; the rest: room for 0 to 40 locks), then
# the text of /proc/PID/fdinfo/FD as the kernel writes it.
head = b"pos:\t0\nflags:\t0100002\nmnt_id:\t29\nino:\t1311849\n"
def lk(n, kind, typ, pid, start, end):
    return b"lock:\t%d: %s %s %d fe:00:1311849 %d %s\n" % (n, kind, typ, pid, start, end)
put("fdinfo", "flock", bytes([64]) + head + lk(1, b"FLOCK  ADVISORY ", b"WRITE", 4242, 0, b"EOF"))
put("fdinfo", "posix-ofd", bytes([64]) + head + lk(1, b"POSIX  ADVISORY ", b"WRITE", 4242, 10, b"14") +
    lk(2, b"POSIX  ADVISORY ", b"READ", 4242, 100, b"EOF") + lk(3, b"OFDLCK ADVISORY ", b"READ", -1, 20, b"24"))
put("fdinfo", "mandatory-lease", bytes([64]) + head + lk(1, b"POSIX  MANDATORY", b"WRITE", 7, 0, b"99") +
    lk(2, b"LEASE  ACTIVE   ", b"READ", 7, 0, b"EOF") + lk(3, b"DELEG  ACTIVE   ", b"READ", 7, 0, b"EOF") +
    lk(4, b"LEASE  BREAKING ", b"UNLCK", 7, 0, b"EOF"))
put("fdinfo", "forty-cut", bytes([65]) + head + b"".join(lk(i + 1, b"POSIX  ADVISORY ", b"READ", 9, 10 * i, b"%d" % (10 * i + 4)) for i in range(40)) +
    b"lock:\t41: POSIX  ADVISORY  WRITE 9 fe:00:1311849 400 4")
put("fdinfo", "offset-max", bytes([2]) + lk(1, b"POSIX  ADVISORY ", b"READ", 1, 9223372036854775806, b"9223372036854775806") +
    lk(2, b"POSIX  ADVISORY ", b"READ", 1, 5, b"9223372036854775807") + lk(3, b"POSIX  ADVISORY ", b"READ", 1, 0, b"99999999999999999999"))
