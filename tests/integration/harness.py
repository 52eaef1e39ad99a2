"""Helpers for integration tests: run the real weir binary against real collectors on loopback.

Collectors: nfcapd (nfdump) bound to 127.0.0.1, and dumpcap on lo whose capture tshark's cflow
dissector decodes. Ground truth: the tshark per-5-tuple tables in the shared captures folder.
"""
import collections
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WEIR = os.environ.get("WEIR_BIN", os.path.join(ROOT, "build", "app", "weir", "weir"))
DRIVERS = os.path.join(ROOT, "drivers-config")


def pcaps_dir():
    """The shared captures: WEIR_PCAPS, else ../shared/pcaps beside the repository."""
    d = os.environ.get("WEIR_PCAPS") or os.path.join(os.path.dirname(ROOT), "shared", "pcaps")
    return os.path.abspath(d)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_bound(port):
    out = subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True).stdout
    return bool(out.strip())


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def stop(proc, sig=signal.SIGTERM, timeout=15):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Collectors:
    """nfcapd on 127.0.0.1:PORT plus dumpcap on lo for the same port, as a context manager.
    Exporters decoded by tshark: IPFIX and NetFlow v9 ("Flow N" blocks) and v5 ("pdu i/n")."""

    def __init__(self, tshark=True):
        self.port = free_udp_port()
        self.dir = tempfile.mkdtemp(prefix="weir-it-")
        self.nfdir = os.path.join(self.dir, "nfcapd")
        self.lo_pcap = os.path.join(self.dir, "lo.pcapng")
        self.want_tshark = tshark
        self.procs = []

    def __enter__(self):
        os.makedirs(self.nfdir)
        self.nfcapd = subprocess.Popen(
            ["nfcapd", "-w", self.nfdir, "-b", "127.0.0.1", "-p", str(self.port), "-B", "8388608"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(self.nfcapd)
        wait_for(lambda: udp_bound(self.port), what="nfcapd to bind")
        if self.want_tshark:
            self.dumpcap = subprocess.Popen(
                ["dumpcap", "-q", "-i", "lo", "-B", "64", "-f", f"udp dst port {self.port}", "-w", self.lo_pcap],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(self.dumpcap)
            wait_for(lambda: os.path.exists(self.lo_pcap) and os.path.getsize(self.lo_pcap) > 0,
                     what="dumpcap to start")
            time.sleep(0.2)
        return self

    def url(self):
        return f"udp://127.0.0.1:{self.port}"

    def finish(self):
        """Stops the collectors so they write everything out."""
        time.sleep(0.3)
        if self.want_tshark:
            stop(self.dumpcap, signal.SIGINT)
        stop(self.nfcapd, signal.SIGTERM)

    def __exit__(self, *exc):
        for p in self.procs:
            stop(p, signal.SIGKILL)
        if not os.environ.get("WEIR_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def nfdump_records(self):
        out = subprocess.run(["nfdump", "-R", self.nfdir, "-o", "csv", "-q"], capture_output=True, text=True,
                             check=True, env=dict(os.environ, TZ="UTC")).stdout
        lines = [l for l in out.splitlines() if l and not l.startswith("ts,")]
        head = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt".split(",")
        recs = []
        for l in lines:
            v = dict(zip(head, l.split(",")))
            if "ipkt" not in v or not v["ipkt"].isdigit():
                continue
            recs.append(Rec(proto_number(v["pr"]), norm(v["sa"]), norm(v["da"]), int(v["sp"]), int(v["dp"]),
                            int(v["ipkt"]), int(v["ibyt"])))
        return recs

    def nfdump_sequence_failures(self):
        out = subprocess.run(["nfdump", "-R", self.nfdir, "-I"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"Sequence failures:\s*(\d+)", out)
        return int(m.group(1)) if m else None

    def tshark_records(self):
        out = subprocess.run(["tshark", "-n", "-r", self.lo_pcap, "-d", f"udp.port=={self.port},cflow", "-V"],
                             capture_output=True, text=True, check=True).stdout
        return parse_tshark_flows(out)


Rec = collections.namedtuple("Rec", "proto src dst sport dport packets octets")


def norm(addr):
    return str(ipaddress.ip_address(addr.strip()))


_PROTO_NAMES = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMP6": 58, "IPV6-ICMP": 58, "SCTP": 132, "GRE": 47, "ESP": 50, "AH": 51,
                "IPv6": 41, "IPIP": 4, "IGMP": 2, "PIM": 103, "OSPF": 89, "VRRP": 112, "RSVP": 46}


def proto_number(s):
    s = s.strip()
    if s.isdigit():
        return int(s)
    if s in _PROTO_NAMES:
        return _PROTO_NAMES[s]
    raise ValueError(f"unknown protocol name from nfdump: {s}")


def parse_tshark_flows(text):
    """Records from tshark -V output of the cflow dissector (one 'Flow N' block per record)."""
    recs, cur, indent = [], None, 0

    def flush():
        if cur and "Packets" in cur:
            recs.append(Rec(cur["proto"], norm(cur["SrcAddr"]), norm(cur["DstAddr"]), int(cur.get("SrcPort", 0)),
                            int(cur.get("DstPort", 0)), int(cur["Packets"]), int(cur["Octets"])))

    for line in text.splitlines():
        s = line.strip()
        depth = len(line) - len(line.lstrip())
        if re.fullmatch(r"Flow \d+", s) or re.fullmatch(r"pdu \d+/\d+", s):  # IPFIX/v9, v5
            flush()
            cur, indent = {}, depth
            continue
        if cur is None:
            continue
        if depth <= indent:  # the flow's block ended (next set, next frame)
            flush()
            cur = None
            continue
        m = re.match(r"(SrcAddr|DstAddr|SrcPort|DstPort|Packets|Octets): (\S+)$", s)
        if m:
            cur[m.group(1)] = m.group(2)
        m = re.match(r"Protocol: (?:.*\((\d+)\)|(\d+))$", s)
        if m:
            cur["proto"] = int(m.group(1) or m.group(2))
    flush()
    return recs


def load_truth(capture):
    rows = []
    with open(os.path.join(pcaps_dir(), "truth", os.path.basename(capture) + ".tsv")) as f:
        for line in f:
            p, src, dst, sp, dp, pk, oc = line.rstrip("\n").split("\t")
            rows.append(Rec(int(p), norm(src), norm(dst), int(sp), int(dp), int(pk), int(oc)))
    return rows


PORTED = (6, 17, 132)


def compare(records, truth):
    """Problems found comparing exported records with tshark's truth (empty list: equal).

    Per (source, destination): packets and octets summed over everything must be equal.
    Per directional 5-tuple, for TCP/UDP/SCTP rows of the truth: sums must be equal.
    """
    problems = []
    by_pair_r, by_pair_t = collections.Counter(), collections.Counter()
    for r in records:
        by_pair_r[(r.src, r.dst, "p")] += r.packets
        by_pair_r[(r.src, r.dst, "o")] += r.octets
    for t in truth:
        by_pair_t[(t.src, t.dst, "p")] += t.packets
        by_pair_t[(t.src, t.dst, "o")] += t.octets
    for k in sorted(set(by_pair_r) | set(by_pair_t)):
        if by_pair_r[k] != by_pair_t[k]:
            problems.append(f"{k[0]} -> {k[1]} {'packets' if k[2] == 'p' else 'octets'}: "
                            f"exported {by_pair_r[k]}, truth {by_pair_t[k]}")
    five_r = collections.Counter()
    for r in records:
        if r.proto in PORTED:
            five_r[(r.proto, r.src, r.dst, r.sport, r.dport)] += r.packets
    five_t = collections.Counter()
    for t in truth:
        if t.proto in PORTED:
            five_t[(t.proto, t.src, t.dst, t.sport, t.dport)] += t.packets
    for k, v in five_t.items():
        if five_r[k] != v:
            problems.append(f"5-tuple {k}: exported {five_r[k]} packets, truth {v}")
    return problems


def run_weir(args, timeout=300, check=True, **kw):
    cmd = [WEIR, "--drivers-config", DRIVERS, "--stats-interval", "0"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"weir exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def replay(capture, collectors=None, extra=(), timeout=300):
    """Replays one capture, returns (CompletedProcess, summary dict)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        summary_path = tmp.name
    args = ["-r", capture, "--summary-json", summary_path] + list(extra)
    if collectors:
        args += ["--ipfix", collectors.url()]
    try:
        p = run_weir(args, timeout=timeout)
        with open(summary_path) as f:
            summary = json.load(f)
    finally:
        os.unlink(summary_path)
    return p, summary


def tshark_truth(capture):
    """Packets and IP-layer octets per directional 5-tuple as tshark reads the capture
    (defragmentation off, so a non-first fragment has ports 0/0)."""
    fields = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt", "ip.len", "ipv6.plen",
              "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport"]
    cmd = ["tshark", "-n", "-r", capture, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-Y", "ip or ipv6", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    agg = collections.Counter()
    for line in out.splitlines():
        v = dict(zip(fields, line.split("\t")))
        if v.get("ip.src"):
            src, dst, proto, octets = v["ip.src"], v["ip.dst"], v["ip.proto"], int(v["ip.len"] or 0)
        else:
            src, dst, proto, octets = v["ipv6.src"], v["ipv6.dst"], v["ipv6.nxt"], int(v["ipv6.plen"] or 0) + 40
        sport = v["tcp.srcport"] or v["udp.srcport"] or v["sctp.srcport"] or "0"
        dport = v["tcp.dstport"] or v["udp.dstport"] or v["sctp.dstport"] or "0"
        key = (int(proto.split(",")[0]), norm(src), norm(dst), int(sport), int(dport))
        agg[key + ("p",)] += 1
        agg[key + ("o",)] += octets
    return [Rec(*k[:5], agg[k], agg[k[:5] + ("o",)]) for k in agg if k[5] == "p"]


class VethNamespace:
    """A network namespace made for one test, with IPv6 off (no stray router solicitations) and
    a veth pair wa <-> wb up inside it. Frames sent out of wb arrive on wa."""

    def __init__(self, name):
        self.name = name
        self.exec = ["ip", "netns", "exec", name]
        subprocess.run(["ip", "netns", "add", name], check=True)
        try:
            for k in ("all", "default"):
                subprocess.run(self.exec + ["sysctl", "-qw", f"net.ipv6.conf.{k}.disable_ipv6=1"], check=True)
            subprocess.run(["ip", "-n", name, "link", "add", "wa", "type", "veth", "peer", "name", "wb"], check=True)
            for link in ("lo", "wa", "wb"):
                subprocess.run(["ip", "-n", name, "link", "set", link, "up"], check=True)
        except Exception:
            self.delete()
            raise

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name])

    def nfcapd(self, directory, port):
        """nfcapd on 127.0.0.1:port inside the namespace, once it has bound the port."""
        os.makedirs(directory, exist_ok=True)
        p = subprocess.Popen(self.exec + ["nfcapd", "-w", directory, "-b", "127.0.0.1", "-p", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: subprocess.run(self.exec + ["ss", "-Hlun", f"sport = :{port}"], capture_output=True,
                                        text=True).stdout.strip() != "", what="nfcapd to bind")
        return p


def ipfix_stream(data):
    """Decodes a byte stream of IPFIX messages (TCP, files) with a reader written for tests:
    returns [(sequence, domain, [('templates', n) | ('data', records, packets)])] per message.
    Options templates (set 3) and variable-length fields are understood; data sets of options
    templates come back as ('options', records)."""
    import struct
    templates, out, off = {}, [], 0
    while off + 16 <= len(data):
        version, length, _, seq, domain = struct.unpack("!HHIII", data[off:off + 16])
        if version != 10 or length < 16 or off + length > len(data):
            raise ValueError(f"bad IPFIX message at offset {off}")
        sets, pos = [], off + 16
        while pos + 4 <= off + length:
            sid, slen = struct.unpack("!HH", data[pos:pos + 4])
            body = data[pos + 4:pos + slen]
            if sid in (2, 3):
                o, n = 0, 0
                while o + 4 <= len(body):
                    tid, count = struct.unpack("!HH", body[o:o + 4])
                    o += 4
                    if sid == 3:
                        o += 2  # scope field count
                    fields = []
                    for _ in range(count):
                        ie, flen = struct.unpack("!HH", body[o:o + 4])
                        o += 4
                        pen = 0
                        if ie & 0x8000:
                            pen = struct.unpack("!I", body[o:o + 4])[0]
                            o += 4
                        fields.append((ie & 0x7FFF, flen, pen))
                    templates[(domain, tid)] = (sid == 3, fields)
                    n += 1
                sets.append(("templates", n))
            elif sid >= 256:
                options, fields = templates[(domain, sid)]  # KeyError: data before its template
                minlen = sum(1 if f[1] == 0xFFFF else f[1] for f in fields)
                recs = pkts = o = 0
                while len(body) - o >= minlen:
                    for ie, flen, pen in fields:
                        if flen == 0xFFFF:
                            flen = body[o]
                            o += 1
                            if flen == 255:
                                flen = struct.unpack("!H", body[o:o + 2])[0]
                                o += 2
                        if ie == 2 and pen == 0:
                            pkts += int.from_bytes(body[o:o + flen], "big")
                        o += flen
                    recs += 1
                sets.append(("options", recs) if options else ("data", recs, pkts))
            pos += slen
        out.append((seq, domain, sets))
        off += length
    if off != len(data):
        raise ValueError(f"{len(data) - off} trailing bytes: a message cut short")
    return out
