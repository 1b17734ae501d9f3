#!/usr/bin/python3
"""testdns.py: a small authoritative DNS server for loopback tests (UDP and TCP).

Needs Debian's python3-dnslib (bookworm: 0.9.23) and so /usr/bin/python3 (a pyenv python3
does not see Debian's packages). dnslib is used only to parse and build packets; the socket
handling is ours, so the server can also misbehave on purpose.

Usage:
  testdns.py [--zone FILE]... [--record 'NAME [TTL] [IN] TYPE DATA']...
             [--address 127.0.0.1]... [--port 0] [--latency MS]
             [--port-file FILE] [--pid-file FILE] [--log FILE]

  --zone FILE     BIND-syntax zone text ($TTL, $ORIGIN, multi-string TXT, '*' wildcards),
                  plus the behaviour directives below. Several files may be given.
  --record RR     one zone line given on the command line (same syntax, directives too).
  --address A     address to listen on (repeatable; IPv6 such as ::1 works). Default 127.0.0.1.
  --port N        UDP and TCP port (the same number on every address). 0 = pick a free one.
  --latency MS    delay every answer by MS milliseconds (each query in its own thread, so
                  parallel queries overlap: 5 queries cost about one delay, not five).
  --port-file F   written (atomically) with the port number once the server is ready.
  --pid-file F    written with the process id.
  --log F         one line per query, written when it arrives:
                  "udp|tcp CLIENT QNAME QTYPE OUTCOME ANSWERS SECONDS" (SECONDS: arrival
                  on the monotonic clock, for tests that check queries were in flight
                  together).

Behaviour directives (in a zone file or --record; each covers NAME and every name below it;
the closest one wins):
  $SERVFAIL NAME       answer SERVFAIL
  $REFUSED NAME        answer REFUSED
  $DROP NAME           never answer, over UDP or TCP (the client times out)
  $TRUNCATE NAME       over UDP: TC=1 and no records (the client must retry over TCP);
                       over TCP: the full answer
  $DELAY NAME MS       answer after MS milliseconds (on top of --latency)
  $WRONGID NAME        first send a reply with another ID that says 127.0.0.2 / "forged",
                       then the real one
  $WRONGQ NAME         first send a reply (right ID) for another question, then the real one
  $SPOOF NAME          first send a forged reply (right ID and question, 127.0.0.2 / "forged")
                       from another source port, then the real one from the server's port

Answers: exact name (case-insensitive), else the closest-encloser '*' wildcard; a name that
exists (or has names below it) but has no record of the asked type gets NOERROR with no
records (NODATA); anything else NXDOMAIN. CNAMEs are followed inside the data. Every answer
has AA and RA set. UDP answers larger than 512 bytes (or the client's EDNS size) are cut to
a bare header with TC=1, as a real server does.

SIGTERM or SIGINT: exit 0. SIGHUP: read the zone files again.
"""

import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time

import traceback

from dnslib import QTYPE, RCODE, RR, A, AAAA, TXT, EDNS0, DNSRecord, DNSQuestion

BEHAVIOURS = {"$SERVFAIL": 0, "$REFUSED": 0, "$DROP": 0, "$TRUNCATE": 0,
              "$DELAY": 1, "$WRONGID": 0, "$WRONGQ": 0, "$SPOOF": 0}


def norm(name):
    """Lower-case, absolute form of a name: 'Foo.Test' -> 'foo.test.'."""
    name = str(name).lower()
    return name if name.endswith(".") else name + "."


def parents(name):
    """'a.b.test.' -> ['a.b.test.', 'b.test.', 'test.', '.']"""
    out = [name]
    while name != ".":
        name = name.split(".", 1)[1] or "."
        out.append(name)
    return out


class Zone:
    """Records and behaviours, read from zone texts."""

    def __init__(self, texts):
        self.rrs = {}          # name -> [RR]
        self.names = set()     # every owner name and every name above one (for NODATA)
        self.behaviour = {}    # name -> (directive, arg)
        count = 0
        for text in texts:
            zone_lines = []
            for line in text.splitlines():
                words = line.split(";", 1)[0].split()
                if words and words[0].upper() in BEHAVIOURS:
                    directive = words[0].upper()
                    want = 2 + BEHAVIOURS[directive]
                    if len(words) != want:
                        raise ValueError("bad directive line: %r" % line)
                    arg = int(words[2]) if want == 3 else None
                    self.behaviour[norm(words[1])] = (directive, arg)
                else:
                    zone_lines.append(line)
            for rr in RR.fromZone("\n".join(zone_lines) + "\n"):
                name = norm(rr.rname)
                self.rrs.setdefault(name, []).append(rr)
                self.names.update(parents(name))
                count += 1
        self.count = count

    def behaviour_for(self, qname):
        for name in parents(qname):
            if name in self.behaviour:
                return self.behaviour[name]
        return (None, None)

    def lookup(self, qname, qtype, owner=None):
        """(rcode, [RR]) for one question, following CNAMEs inside the data. The first
        owner name is written as asked (owner), as real servers do."""
        answers = []
        seen = set()
        name = qname
        owner = owner or qname
        for _ in range(8):
            rrs = self.rrs.get(name)
            if rrs is None:
                rrs = self.wildcard(name)
            if rrs is None:
                if answers:                       # CNAME target not in the data
                    return RCODE.NOERROR, answers
                rcode = RCODE.NOERROR if name in self.names else RCODE.NXDOMAIN
                return rcode, answers
            hits = [rr for rr in rrs if rr.rtype == qtype or qtype == QTYPE.ANY]
            cnames = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if hits or not cnames or qtype == QTYPE.CNAME:
                return RCODE.NOERROR, answers + [self.owned(rr, owner) for rr in hits]
            answers.append(self.owned(cnames[0], owner))
            seen.add(name)
            name = norm(cnames[0].rdata.label)
            owner = str(cnames[0].rdata.label)
            if name in seen:
                break
        return RCODE.SERVFAIL, []

    def wildcard(self, name):
        """RRs of the closest encloser's '*' child, if there is one (RFC 4592, simplified)."""
        for encloser in parents(name)[1:]:
            if encloser in self.names:
                star = "*." + encloser if encloser != "." else "*."
                return self.rrs.get(star)
        return None

    @staticmethod
    def owned(rr, name):
        """A copy of rr with the asked name as its owner (for wildcard answers)."""
        return RR(rname=name, rtype=rr.rtype, rclass=rr.rclass, ttl=rr.ttl, rdata=rr.rdata)


class Server:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.zone = self.load()

    def load(self):
        texts = []
        for path in self.args.zone:
            with open(path) as f:
                texts.append(f.read())
        texts.append("\n".join(self.args.record))
        return Zone(texts)

    def reload(self, *_):
        try:
            zone = self.load()
        except Exception as e:                 # keep the old data on a broken file
            print("testdns: reload failed: %s" % e, file=sys.stderr, flush=True)
            return
        self.zone = zone
        print("testdns: reloaded, %d records" % zone.count, flush=True)

    def log(self, proto, client, qname, qtype, outcome, n):
        if self.log_file:
            with self.lock:
                self.log_file.write("%s %s:%s %s %s %s %d %.6f\n" % (
                    proto, client[0], client[1], qname, qtype, outcome, n, time.monotonic()))

    def answer(self, data, proto, client):
        """A list of (delay_seconds, bytes or None) to send for one query; None = no reply."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return []                          # not DNS: drop it, as servers do
        if request.header.qr or not request.questions:
            return []
        q = request.questions[0]
        qname = norm(q.qname)
        qtype = q.qtype
        qtype_name = QTYPE.get(qtype, str(qtype))
        zone = self.zone
        directive, arg = zone.behaviour_for(qname)
        delay = self.args.latency / 1000.0
        if directive == "$DELAY":
            delay += arg / 1000.0

        def new_reply():
            r = request.reply(ra=1, aa=1)
            r.header.ad = 0                    # nothing here is DNSSEC-validated
            return r

        reply = new_reply()
        # echo EDNS0 so EDNS clients see a sane answer
        edns = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        limit = 512
        if edns:
            limit = max(512, min(4096, edns[0].rclass))
            reply.add_ar(EDNS0(udp_len=1232))
        if directive == "$DROP":
            self.log(proto, client, qname, qtype_name, "DROP", 0)
            return [(delay, None)]
        if directive in ("$SERVFAIL", "$REFUSED"):
            reply.header.rcode = RCODE.SERVFAIL if directive == "$SERVFAIL" else RCODE.REFUSED
            self.log(proto, client, qname, qtype_name, directive[1:], 0)
            return [(delay, reply.pack())]
        rcode, rrs = zone.lookup(qname, qtype, str(q.qname))
        reply.header.rcode = rcode
        for rr in rrs:
            reply.add_answer(rr)
        packed = reply.pack()
        outcome = RCODE.get(rcode)
        if proto == "udp" and (directive == "$TRUNCATE" or len(packed) > limit):
            cut = new_reply()
            cut.header.tc = 1
            cut.header.rcode = rcode
            packed = cut.pack()
            outcome += "+TC"
        self.log(proto, client, qname, qtype_name, outcome, len(rrs))
        out = []
        if directive in ("$WRONGID", "$WRONGQ", "$SPOOF") and proto == "udp":
            fake = new_reply()
            if directive == "$WRONGID":
                fake.header.id = (request.header.id + 1) & 0xFFFF
            if directive == "$WRONGQ":
                fake.questions = [DNSQuestion("wrong-question.test.", qtype)]
            fake_name = fake.questions[0].qname
            if qtype == QTYPE.TXT:
                fake.add_answer(RR(fake_name, QTYPE.TXT, rdata=TXT("forged"), ttl=300))
            elif qtype == QTYPE.AAAA:
                fake.add_answer(RR(fake_name, QTYPE.AAAA, rdata=AAAA("::2"), ttl=300))
            else:
                fake.add_answer(RR(fake_name, QTYPE.A, rdata=A("127.0.0.2"), ttl=300))
            out.append((delay, ("spoof" if directive == "$SPOOF" else "fake", fake.pack())))
        out.append((delay, packed))
        return out

    # --- transports -------------------------------------------------------------------

    def serve_udp(self, sock):
        while True:
            try:
                data, client = sock.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self.udp_one, args=(sock, data, client),
                             daemon=True).start()

    def udp_one(self, sock, data, client):
        try:
            self.udp_send(sock, data, client)
        except Exception:
            traceback.print_exc()

    def udp_send(self, sock, data, client):
        start = time.monotonic()
        for delay, packet in self.answer(data, "udp", client):
            wait = start + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if packet is None:
                continue
            try:
                if isinstance(packet, tuple):
                    kind, body = packet
                    if kind == "spoof":
                        family = socket.AF_INET6 if ":" in client[0] else socket.AF_INET
                        with socket.socket(family, socket.SOCK_DGRAM) as other:
                            other.bind((sock.getsockname()[0], 0))
                            other.sendto(body, client)
                    else:
                        sock.sendto(body, client)
                else:
                    sock.sendto(packet, client)
            except OSError:
                pass

    def serve_tcp(self, sock):
        while True:
            try:
                conn, client = sock.accept()
            except OSError:
                return
            threading.Thread(target=self.tcp_conn, args=(conn, client), daemon=True).start()

    def tcp_conn(self, conn, client):
        try:
            self.tcp_serve(conn, client)
        except Exception:
            traceback.print_exc()

    def tcp_serve(self, conn, client):
        conn.settimeout(30)
        with conn:
            while True:
                head = self.recv_exact(conn, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                data = self.recv_exact(conn, length)
                if data is None:
                    return
                start = time.monotonic()
                for delay, packet in self.answer(data, "tcp", client):
                    wait = start + delay - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    if packet is None or isinstance(packet, tuple):
                        continue
                    try:
                        conn.sendall(struct.pack("!H", len(packet)) + packet)
                    except OSError:
                        return

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = conn.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf


def bind_all(addresses, port):
    """Bind UDP and TCP on every address, all on one port; port 0 picks a free one."""
    for _ in range(50):
        socks = []
        chosen = port
        try:
            for addr in addresses:
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                u = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(u)
                u.bind((addr, chosen))
                chosen = u.getsockname()[1]
                t = socket.socket(family, socket.SOCK_STREAM)
                socks.append(t)
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                t.bind((addr, chosen))
                t.listen(64)
            return chosen, socks
        except OSError:
            for s in socks:
                s.close()
            if port:
                raise
    raise OSError("no free port for UDP and TCP together")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zone", action="append", default=[])
    p.add_argument("--record", action="append", default=[])
    p.add_argument("--address", action="append", default=[])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--log")
    args = p.parse_args()
    addresses = args.address or ["127.0.0.1"]
    server = Server(args)
    port, socks = bind_all(addresses, args.port)
    for s in socks:
        target = server.serve_udp if s.type == socket.SOCK_DGRAM else server.serve_tcp
        threading.Thread(target=target, args=(s,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    signal.signal(signal.SIGHUP, server.reload)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("testdns: %d records, %d behaviours, udp+tcp on %s port %d" % (
        server.zone.count, len(server.zone.behaviour), ",".join(addresses), port), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
