#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal, answers its permission prompt, and reports.

usage: answer.py ANSWER COMMAND [ARGS...]
Waits (bounded) for "Allow [o]nce" on the terminal, types ANSWER and a newline,
then prints everything the terminal showed and exits with the command's status.
"""
import os, pty, select, sys, time

answer, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

seen, answered, deadline = b"", False, time.time() + 30
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    if not answered and b"Allow [o]nce" in seen:
        os.write(fd, answer.encode() + b"\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
