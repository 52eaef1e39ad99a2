# SPDX-License-Identifier: BSD-3-Clause
"""Helpers for integration tests: run the real weir binary against real collectors on loopback.

Collectors: nfcapd (nfdump) bound to 127.0.0.1, and dumpcap on lo whose capture tshark's cflow
dissector decodes. Ground truth: the tshark per-5-tuple tables in the captures folder.
"""
import collections
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import unittest
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WEIR = os.environ.get("WEIR_BIN", os.path.join(ROOT, "build", "app", "weir", "weir"))
DRIVERS = os.path.join(ROOT, "drivers-config")


BUNDLED = os.path.join(ROOT, "captures")


def pcaps_dir():
    """The captures: WEIR_PCAPS, else the corpus at ../shared/pcaps beside the repository, else
    the few bundled in captures/ (same layout: MANIFEST.tsv, truth/, LICENSES/)."""
    d = os.environ.get("WEIR_PCAPS")
    if not d:
        d = os.path.join(os.path.dirname(ROOT), "shared", "pcaps")
        if not os.path.isdir(d):
            d = BUNDLED
    return os.path.abspath(d)


def capture(name):
    """The path of a capture; the test is skipped when the captures at hand do not have it (the
    bundled set holds the small ones; the rest are in the full corpus)."""
    path = os.path.join(pcaps_dir(), name)
    if not os.path.exists(path):
        raise unittest.SkipTest(f"{name} is not in {pcaps_dir()} (set WEIR_PCAPS to the full corpus)")
    return path


def bundled():
    """Whether the captures at hand are the bundled few, not the corpus."""
    return os.path.realpath(pcaps_dir()) == os.path.realpath(BUNDLED)


def present(names):
    """Those of the captures named that are at hand."""
    return [n for n in names if os.path.exists(os.path.join(pcaps_dir(), n))]


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


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClickHouse:
    """A clickhouse-server of the test's own: data under `tmp`, loopback ports picked once (a
    restart keeps them), killed when the test ends. Users: "default" without a password and
    "weir" with the password PASSWORD. `config_d`: {file name: XML} next to the server's
    configuration (remote_servers of a cluster, say)."""
    PASSWORD = "s3cret w0rd"

    def __init__(self, test, tmp, config_d=None, start=True):
        self.server = shutil.which("clickhouse-server")
        if not self.server:
            test.skipTest("clickhouse-server is not installed")
        self.tmp = tmp
        self.http, self.tcp, self.inter = free_tcp_port(), free_tcp_port(), free_tcp_port()
        self.users = os.path.join(tmp, "users.xml")
        with open(self.users, "w") as uf:
            uf.write("<yandex><profiles><default/></profiles><quotas><default/></quotas><users>"
                     "<default><password></password><networks><ip>::/0</ip></networks><profile>default</profile>"
                     "<quota>default</quota><access_management>1</access_management></default>"
                     f"<weir><password>{self.PASSWORD}</password><networks><ip>::/0</ip></networks>"
                     "<profile>default</profile><quota>default</quota></weir></users></yandex>")
        self.config = "/etc/clickhouse-server/config.xml"
        if config_d:
            self.configure(config_d)
        self.proc = None
        test.addCleanup(self.stop)
        if start:
            self.start()

    def configure(self, config_d):
        self.config = os.path.join(self.tmp, "config.xml")
        shutil.copy("/etc/clickhouse-server/config.xml", self.config)
        os.makedirs(os.path.join(self.tmp, "config.d"), exist_ok=True)
        for name, xml in config_d.items():
            with open(os.path.join(self.tmp, "config.d", name), "w") as f:
                f.write(xml)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http}"

    def start(self):
        t = self.tmp
        self.proc = subprocess.Popen(
            [self.server, f"--config-file={self.config}", "--", f"--users_config={self.users}", f"--path={t}/data/",
             f"--tmp_path={t}/tmp/", f"--user_files_path={t}/uf/", f"--format_schema_path={t}/fs/",
             f"--http_port={self.http}", f"--tcp_port={self.tcp}", f"--interserver_http_port={self.inter}",
             "--listen_host=127.0.0.1", f"--logger.log={t}/server.log", f"--logger.errorlog={t}/error.log",
             "--logger.level=warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.up, timeout=60, what="clickhouse-server to start")

    def stop(self):
        if self.proc:
            stop(self.proc, signal.SIGKILL)

    def up(self):
        try:
            return self.query("SELECT 1").strip() == "1"
        except OSError:
            return False

    def query(self, sql):
        import urllib.request
        req = urllib.request.Request(self.url + "/", data=sql.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()

    def statements(self, path, run=True):
        """The statements of a .sql file of deploy/clickhouse (comments left out); run each unless
        told not to."""
        with open(os.path.join(ROOT, "deploy", "clickhouse", path)) as f:
            text = re.sub(r"--[^\n]*", "", f.read())
        out = [x.strip() for x in text.split(";") if x.strip()]
        if run:
            for statement in out:
                self.query(statement)
        return out


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


def ip_checksum(b):
    """The Internet checksum (RFC 1071) of a header built by a test."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def tshark_rows(capture, fields, options=()):
    """tshark's fields of every packet of a capture, one dict per packet (field -> text)."""
    cmd = ["tshark", "-n", "-r", capture] + list(options) + ["-T", "fields", "-E", "separator=/t"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines()]


def tshark_truth(capture):
    """Packets and IP-layer octets per directional 5-tuple as tshark reads the capture
    (defragmentation off, so a non-first fragment has ports 0/0)."""
    fields = ["ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt", "ip.len", "ipv6.plen",
              "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport"]
    agg = collections.Counter()
    for v in tshark_rows(capture, fields, ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
                                           "-Y", "ip or ipv6", "-E", "occurrence=f"]):
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


# ---- tshark's reading of every IP layer of every packet (tunnels, times) -------------------

# Protocols behind which tshark shows an IP header that is not carried but quoted (ICMP errors),
# sampled (sFlow), compressed (IPComp) or inside a frame weir does not open (802.11 from wireless
# controllers, CAPWAP, NHRP error indications, GTP' charging records). The innermost IP layer
# a flow is keyed on is the last one before any of these.
NOT_CARRIED = {"icmp", "icmpv6", "sflow", "ipcomp", "wlan", "capwap.data", "nhrp", "gtpprime"}
_EXT = {"ipv6.hopopts": "ipv6.hopopts.nxt", "ipv6.routing": "ipv6.routing.nxt", "ipv6.fraghdr": "ipv6.fraghdr.nxt",
        "ipv6.dstopts": "ipv6.dstopts.nxt", "ah": "ah.next_header", "mipv6": "mip6.proto"}
_PORTS = {"tcp": ("tcp.srcport", "tcp.dstport"), "udp": ("udp.srcport", "udp.dstport"),
          "sctp": ("sctp.srcport", "sctp.dstport"), "dccp": ("dccp.srcport", "dccp.dstport"),
          "udplite": ("udp.srcport", "udp.dstport")}
_LAYER_FIELDS = ["frame.protocols", "frame.time_epoch", "ip.src", "ip.dst", "ip.proto", "ip.len", "ipv6.src",
                 "ipv6.dst", "ipv6.nxt", "ipv6.plen", "ipv6.opt.jumbo", "vxlan.vni", "geneve.vni", "gre.key",
                 "erspan.spanid", "mpls.label"] + sorted(set(_EXT.values())) + sorted({f for p in _PORTS.values() for f in p})

Layer = collections.namedtuple("Layer", "proto src dst sport dport octets")
Packet = collections.namedtuple("Packet", "time_ns layers tunnels")  # tunnels[i]: (type, id) between layers i and i+1


def _nth(v, field, k):
    vals = (v.get(field) or "").split(",")
    return vals[k] if k < len(vals) else ""


def _ns(epoch):
    sec, _, frac = epoch.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


def _tunnel_between(stack, a, b, v, l4):
    """The tunnel type (weir's name) and id tshark shows between positions a and b of the stack."""
    mid = stack[a:b]
    occ = lambda name, pos: stack[:pos].count(name)
    if "vxlan" in mid:
        k = a + mid.index("vxlan")
        vni = int(_nth(v, "vxlan.vni", occ("vxlan", k)) or "0", 0)
        return ("vxlan_gpe" if l4 and l4[1] == 4790 else "vxlan", vni)
    if "nsh" in mid:  # VXLAN-GPE: tshark lists its NSH, not the VXLAN header before it
        return ("vxlan_gpe", int(_nth(v, "vxlan.vni", occ("vxlan", a)) or "0", 0))
    if "geneve" in mid:
        k = a + mid.index("geneve")
        return ("geneve", int(_nth(v, "geneve.vni", occ("geneve", k)) or "0", 0))
    if "gtp" in mid:
        return ("gtpu", 0)
    if "teredo" in mid:
        return ("teredo", 0)
    if "pim" in mid:
        return ("pim", 0)
    if "erspan" in mid:
        k = a + mid.index("erspan")
        return ("erspan", int(_nth(v, "erspan.spanid", occ("erspan", k)) or "0", 0))
    if "mpls" in mid:
        last = a + len(mid) - 1 - mid[::-1].index("mpls")
        return ("mpls", int(_nth(v, "mpls.label", occ("mpls", last)) or "0", 0))
    if "gre" in mid:
        k = a + mid.index("gre")
        key = _nth(v, "gre.key", occ("gre", k))
        key = int(key, 0) if key else None
        if "ppp" in mid:
            return ("gre", 0)
        if "eth" in mid and key is not None:
            return ("nvgre", key >> 8)
        return ("gre", key or 0)
    return ("ipip", 0)


def tshark_packets(capture, count=None):
    """Every packet (or the first `count`) with its IP layers, outermost first, as tshark reads
    them (defragmentation off), and the tunnel between each pair of layers. Packets with no IP
    header are left out."""
    if count == 0:
        return []
    # Port 8472 is VXLAN too (Linux's default before IANA's 4789), as weir's default configuration says.
    cmd = ["tshark", "-n", "-r", capture, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-d", "udp.port==8472,vxlan", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in _LAYER_FIELDS:
        cmd += ["-e", f]
    if count is not None:
        cmd += ["-c", str(count)]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    packets = []
    for line in out.splitlines():
        v = dict(zip(_LAYER_FIELDS, line.split("\t")))
        stack = v["frame.protocols"].split(":")
        for k, p in enumerate(stack):
            if p in NOT_CARRIED:
                stack = stack[:k]
                break
        occ = lambda name, pos: stack[:pos].count(name)
        layers, positions = [], []
        for i, p in enumerate(stack):
            if p not in ("ip", "ipv6"):
                continue
            k = occ(p, i)
            if p == "ip":
                src, dst, proto = _nth(v, "ip.src", k), _nth(v, "ip.dst", k), _nth(v, "ip.proto", k)
                octets = int(_nth(v, "ip.len", k) or 0)
            else:
                src, dst, proto = _nth(v, "ipv6.src", k), _nth(v, "ipv6.dst", k), _nth(v, "ipv6.nxt", k)
                plen = int(_nth(v, "ipv6.plen", k) or 0)
                jumbo = _nth(v, "ipv6.opt.jumbo", k) if plen == 0 else ""
                octets = (int(jumbo) if jumbo else plen) + 40
            if not src or not dst or not proto:
                continue  # a header tshark handed on to the other IP version, or cut short: not a layer
            j = i + 1
            while p == "ipv6" and j < len(stack) and stack[j] in _EXT:
                val = _nth(v, _EXT[stack[j]], occ(stack[j], j))
                if val:
                    proto = val
                j += 1
            l4 = stack[j] if j < len(stack) else ""
            sport = dport = 0
            if l4 in _PORTS and proto in ("6", "17", "132", "33", "136"):
                name = "udp" if l4 == "udplite" else l4
                kk = occ(name, j) + (occ("udplite", j) if name == "udp" else 0)
                sport = int(_nth(v, _PORTS[l4][0], kk) or 0)
                dport = int(_nth(v, _PORTS[l4][1], kk) or 0)
            layers.append(Layer(int(proto), norm(src), norm(dst), sport, dport, octets))
            positions.append(i)
        if not layers:
            continue
        tunnels = [_tunnel_between(stack, positions[n] + 1, positions[n + 1], v,
                                   (layers[n].sport, layers[n].dport) if layers[n].proto == 17 else None)
                   for n in range(len(layers) - 1)]
        packets.append(Packet(_ns(v["frame.time_epoch"]), layers, tunnels))
    return packets


def flows_of(packets, inner):
    """Packets and octets per directional 5-tuple (ICMP without ports), with the tunnel that
    carried the flow's layer when `inner`: key (proto, src, dst, sport, dport, tunnel_type,
    tunnel_id, tunnel_src, tunnel_dst)."""
    agg = collections.Counter()
    for p in packets:
        n = len(p.layers) - 1 if inner else 0
        l = p.layers[n]
        icmp = l.proto in (1, 58)
        t = ("", 0, "", "")
        if n > 0:
            ttype, tid = p.tunnels[n - 1]
            d = p.layers[n - 1]
            t = (ttype, tid, d.src, d.dst)
        key = (l.proto, l.src, l.dst, 0 if icmp else l.sport, 0 if icmp else l.dport) + t
        agg[key + ("p",)] += 1
        agg[key + ("o",)] += l.octets
    return agg


def record_flows(records, with_tunnel=True, copies=None):
    """The same aggregation over weir's JSON-lines records. `copies`: True for outer copies only,
    False for the rest, None for all."""
    agg = collections.Counter()
    for r in records:
        if copies is not None and bool(r.get("outer_copy")) != copies:
            continue
        icmp = r["proto"] in (1, 58)
        key = (r["proto"], norm(r["src"]), norm(r["dst"]), 0 if icmp else r["sport"], 0 if icmp else r["dport"])
        if with_tunnel:
            t = r.get("tunnel_type") or ""
            key += (t, r.get("tunnel_id", 0) if t else 0, norm(r["tunnel_src"]) if t else "",
                    norm(r["tunnel_dst"]) if t else "")
        else:
            key += ("", 0, "", "")
        agg[key + ("p",)] += r["packets"]
        agg[key + ("o",)] += r["bytes"]
    return agg


def counter_diff(got, want, limit=12):
    """Keys where two aggregations differ, as readable lines."""
    out = []
    for k in sorted(set(got) | set(want), key=str):
        if got[k] != want[k]:
            out.append(f"{k[:-1]} {'packets' if k[-1] == 'p' else 'octets'}: weir {got[k]}, tshark {want[k]}")
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def replay_jsonl(capture, mode, workdir, extra_config=None, extra_args=(), cwd=None, drivers=True, time_unit="ms"):
    """Replays a capture with a JSON-lines file exporter; returns (process, summary, records)."""
    out = os.path.join(workdir, "flows.jsonl")
    summary = os.path.join(workdir, "summary.json")
    cfg = {"ports": [{"device": "net_pcap_replay,rx_pcap=" + capture}], "tunnels": {"mode": mode},
           "exporters": [{"format": "jsonl", "url": "file://" + out, "time_unit": time_unit}],
           "summary_json": summary, "stats_interval_s": 0}
    if extra_config:
        cfg.update(extra_config)
    path = os.path.join(workdir, "weir.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    cmd = [WEIR, "-c", path] + (["--drivers-config", DRIVERS] if drivers else []) + list(extra_args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)
    s = None
    if os.path.exists(summary):
        with open(summary) as f:
            s = json.load(f)
    recs = []
    if os.path.exists(out):
        with open(out) as f:
            recs = [json.loads(l) for l in f]
    return p, s, recs


def scratch(test, prefix):
    """A scratch folder for one test, removed when it ends (kept with WEIR_KEEP_TMP=1)."""
    d = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("WEIR_KEEP_TMP"):
        test.addCleanup(shutil.rmtree, d, True)
    return d


class NamespaceCase(unittest.TestCase):
    """A test that captures on af_packet over a veth pair inside a network namespace of its own
    (VethNamespace): needs root; the namespace and the test's scratch folder go when it ends."""
    NAME = "weir-ns"

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for network namespaces")
        self.netns = VethNamespace(f"{self.NAME}-{os.getpid()}")
        self.addCleanup(self.netns.delete)
        self.nsexec = self.netns.exec
        self.tmp = scratch(self, self.NAME + "-")

    def send_frames(self, iface, conversations, per):
        """UDP conversations out of `iface` inside the namespace (sendframes.py): frames sent."""
        out = subprocess.run(self.nsexec + [sys.executable, os.path.join(HERE, "sendframes.py"), iface,
                                            str(conversations), str(per)], capture_output=True, text=True, check=True)
        return int(out.stdout)

    def stop_weir(self, weir, summary, timeout=60):
        """SIGTERM, then weir's exit (0) and its summary (accounting balanced): (summary, stderr)."""
        weir.send_signal(signal.SIGTERM)
        _, err = weir.communicate(timeout=timeout)
        self.assertEqual(weir.returncode, 0, err)
        with open(summary) as f:
            s = json.load(f)
        self.assertTrue(s["accounting"]["balanced"], s["accounting"])
        return s, err

    def start_weir(self, cfg, summary):
        """weir with configuration `cfg` inside the namespace, killed if the test leaves it
        running; returned once it has had time to start, and checked to be running."""
        weir = subprocess.Popen(self.nsexec + [WEIR, "--drivers-config", DRIVERS, "-c", cfg, "--stats-interval", "0",
                                               "--summary-json", summary],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: weir.poll() is None and weir.kill())
        time.sleep(3)
        self.assertIsNone(weir.poll(), "weir is running")
        return weir
