#!/usr/bin/env python3
"""A private, loopback-only Postfix instance used as a store-and-forward relay peer.

It listens on 127.0.0.1:--port and relays everything to --relayhost (an
smtp-sink), with its own config/queue under --dir; the system Postfix (if
any) is not touched.  Postfix answers 250 once the message is fsync'ed in its
queue and delivers afterwards, so to compare with a synchronous relay measure
until the queue has drained (`wait-drain`).

  python postfix_relay.py start --port 12610 --relayhost 127.0.0.1:12525
  python postfix_relay.py wait-drain --timeout 120
  python postfix_relay.py stop

Needs the Debian postfix package (see smtp_load.py --help).  Run as root.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

DEFAULT_DIR = "/tmp/pfbench"
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = pfbench.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [{relay_host}]:{relay_port}
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_process_limit = {procs}
message_size_limit = 67108864
biff = no
"""


def cfg(d):
    return os.path.join(d, "etc")


def pf(d, *args, check=True):
    return subprocess.run(
        ["postfix", "-c", cfg(d), *args], capture_output=True, text=True, check=check
    )


def queue_count(d):
    n = 0
    base = os.path.join(d, "queue")
    for q in QUEUES:
        for _root, _dirs, files in os.walk(os.path.join(base, q)):
            n += len(files)
    return n


def wait_drain(d, timeout=120.0, poll=0.02):
    """Block until the queue is empty; returns seconds waited (raises on timeout)."""
    t0 = time.perf_counter()
    while True:
        if queue_count(d) == 0:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(
                f"postfix queue not drained after {timeout}s ({queue_count(d)} files)"
            )
        time.sleep(poll)


def master_pid(d):
    try:
        with open(os.path.join(d, "queue", "pid", "master.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def start(d, port, relayhost, procs=150, host="127.0.0.1"):
    rh, _, rp = relayhost.rpartition(":")
    if not rh.startswith("127.") or not host.startswith("127."):
        raise SystemExit("loopback only")
    os.makedirs(cfg(d), exist_ok=True)
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    os.makedirs(os.path.join(d, "queue"), exist_ok=True)
    with open(os.path.join(cfg(d), "main.cf"), "w") as f:
        f.write(MAIN_CF.format(dir=d, relay_host=rh, relay_port=rp, procs=procs))
    with open(os.path.join(cfg(d), "master.cf"), "w") as f:
        f.write(MASTER_CF.format(listen=f"{host}:{port}"))
    subprocess.run(["chown", "-R", "postfix", os.path.join(d, "data")], check=True)
    r = pf(d, "start", check=False)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit("postfix start failed")
    for _ in range(100):
        if master_pid(d):
            break
        time.sleep(0.05)
    return master_pid(d)


def stop(d):
    pid = master_pid(d)
    pf(d, "stop", check=False)
    if pid:
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("action", choices=["start", "stop", "wait-drain", "count"])
    p.add_argument("--dir", default=DEFAULT_DIR)
    p.add_argument("--port", type=int, default=12610)
    p.add_argument("--relayhost", default="127.0.0.1:12525")
    p.add_argument("--procs", type=int, default=150)
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args(argv)
    if a.action == "start":
        print("master pid", start(a.dir, a.port, a.relayhost, a.procs))
    elif a.action == "stop":
        stop(a.dir)
    elif a.action == "wait-drain":
        print(f"drained in {wait_drain(a.dir, a.timeout):.3f}s")
    else:
        print(queue_count(a.dir))


if __name__ == "__main__":
    main()
