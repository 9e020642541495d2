#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal, answers its permission prompts, and reports.

usage: answer.py ANSWERS COMMAND [ARGS...]
ANSWERS is a comma-separated list (e.g. "s,d"): each time "Allow [o]nce" appears on
the terminal the next answer is typed, followed by a newline. Prints everything the
terminal showed and exits with the command's status. Bounded: after 30 s the command
is killed, so a test can never hang.
"""
import os, pty, select, signal, sys, time

answers, argv = sys.argv[1].split(","), sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

seen, answered, deadline = b"", 0, time.time() + 30
while True:
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
        seen += b"\n[answer.py: timed out, killed]\n"
        break
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    while seen.count(b"Allow [o]nce") > answered and answered < len(answers):
        os.write(fd, answers[answered].encode() + b"\n")
        answered += 1
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
