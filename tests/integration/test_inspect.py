#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Payload inspection with the real weir binary: the shipped application rules against tshark's
own dissection of real captures (application, TLS server name, HTTP Host), a pattern split across
two TCP segments and the depth, rule errors, a reload with a bad rule set, and the IPFIX export of
the findings as tshark and nfdump read it."""
import collections
import concurrent.futures
import csv
import json
import os
import signal
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_operate import HeldReplay, http  # noqa: E402

APPS = os.path.join(harness.ROOT, "deploy", "rules", "apps.json")

# tshark's protocol names (frame.protocols) for what the shipped rules name.
TSHARK_APP = {
    "tls": "TLS", "ssl": "TLS", "http": "HTTP", "ssh": "SSH", "dns": "DNS", "mdns": "DNS", "llmnr": "DNS",
    "smtp": "SMTP", "ftp": "FTP", "imap": "IMAP", "pop": "POP3", "sip": "SIP", "rtsp": "RTSP", "mqtt": "MQTT",
    "smb": "SMB", "smb2": "SMB", "bittorrent": "BitTorrent", "bt-dht": "BitTorrent", "quic": "QUIC", "ntp": "NTP",
    "snmp": "SNMP", "dhcp": "DHCP", "bootp": "DHCP", "rdp": "RDP", "mysql": "MySQL", "pgsql": "PostgreSQL",
    "ldap": "LDAP", "cldap": "LDAP", "kerberos": "Kerberos", "telnet": "Telnet", "vnc": "VNC", "irc": "IRC",
    "xmpp": "XMPP", "stun": "STUN", "ssdp": "SSDP", "syslog": "Syslog", "mbtcp": "Modbus", "dnp3": "DNP3",
    "s7comm": "S7comm", "resp": "Redis", "mongo": "MongoDB", "openvpn": "OpenVPN", "git": "Git", "nbss": "NetBIOS",
    "nbdgm": "NetBIOS", "nbns": "NetBIOS", "http2": "HTTP", "socks": "SOCKS", "rdpudp": "RDP",
}
FIELDS = ["frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "ipv6.nxt", "tcp.srcport",
          "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.len", "udp.length",
          "frame.protocols", "tls.handshake.extensions_server_name", "http.host", "http.request",
          "tls.handshake.type", "tcp.payload", "udp.payload"]


def key_of(proto, a, ap, b, bp):
    x, y = (a, ap), (b, bp)
    return (proto,) + (x + y if x <= y else y + x)


class Conversation:
    def __init__(self):
        self.apps = set()
        self.sni = self.host = None
        self.starts_with_syn = None
        self.initiator = None
        self.first_payload = {}  # direction -> frame number
        self.first_bytes = {}  # direction -> its first payload bytes
        self.sni_frame = self.host_frame = None


def tshark_conversations(capture):
    """Per conversation (canonical 5-tuple): what tshark makes of it."""
    convs = collections.OrderedDict()
    for v in harness.tshark_rows(capture, FIELDS, ["-E", "occurrence=a", "-E", "aggregator=|"]):
        src, dst = v["ip.src"] or v["ipv6.src"], v["ip.dst"] or v["ipv6.dst"]
        if not src or "|" in src or "|" in (v["ip.proto"] + v["ipv6.nxt"]):
            continue  # not IP, or tunneled (more than one IP header)
        if v["tcp.srcport"]:
            proto, sp, dp = 6, int(v["tcp.srcport"].split("|")[0]), int(v["tcp.dstport"].split("|")[0])
            plen = int(v["tcp.len"].split("|")[0] or 0)
        elif v["udp.srcport"]:
            proto, sp, dp = 17, int(v["udp.srcport"].split("|")[0]), int(v["udp.dstport"].split("|")[0])
            plen = max(0, int(v["udp.length"].split("|")[0] or 8) - 8)
        else:
            continue
        src, dst = harness.norm(src), harness.norm(dst)
        k = key_of(proto, src, sp, dst, dp)
        c = convs.setdefault(k, Conversation())
        if c.initiator is None:
            c.initiator = (src, sp)
            c.starts_with_syn = proto == 17 or (v["tcp.flags.syn"] in ("1", "True") and
                                                 v["tcp.flags.ack"] in ("0", "False"))
        d = 0 if (src, sp) == c.initiator else 1
        frame = int(v["frame.number"])
        if plen and d not in c.first_payload:
            c.first_payload[d] = frame
            c.first_bytes[d] = bytes.fromhex((v["tcp.payload"] or v["udp.payload"]).split("|")[0].replace(":", ""))
        for p in v["frame.protocols"].split(":"):
            if p in TSHARK_APP:
                c.apps.add(TSHARK_APP[p])
        if v["tls.handshake.extensions_server_name"] and c.sni is None and "1" in v["tls.handshake.type"].split("|"):
            c.sni, c.sni_frame = v["tls.handshake.extensions_server_name"].split("|")[0], frame
        if v["http.host"] and v["http.request"] and c.host is None:
            c.host, c.host_frame = v["http.host"].split("|")[0], frame
    return convs


def starts_like(app, data):
    """Whether a direction's first bytes look like the start of `app` at all (for explaining
    conversations tshark names by port or by heuristics deeper in the stream)."""
    import re
    if app == "HTTP":
        return re.match(rb"^([A-Z-]+ (/|\*|https?://)|HTTP/\d\.\d \d{3}|PRI \* HTTP/2)", data) is not None
    if app == "TLS":
        return b"\x16\x03" in data[:16] or (data[:1] >= b"\x80" and data[2:3] == b"\x01")
    if app == "QUIC":
        return data[:1] >= b"\xc0"  # a long header: Initial, 0-RTT, Handshake, Retry, version negotiation
    if app == "RDP":
        return data[:4] == b"\xff\xff\xff\xff" or data[:2] == b"\x03\x00"
    if app == "FTP":
        return re.match(rb"^([1-5]\d\d[ -]|[A-Za-z]{3,4}( |\r?\n))", data) is not None
    return True


def weir_conversations(records):
    out = collections.defaultdict(lambda: {"apps": set(), "sni": set(), "host": set(), "tags": set()})
    for r in records:
        if r["tunnel_type"]:
            continue
        k = key_of(r["proto"], harness.norm(r["src"]), r["sport"], harness.norm(r["dst"]), r["dport"])
        w = out[k]
        if r["application"]:
            w["apps"].add(r["application"])
        if r["tls_server_name"]:
            w["sni"].add(r["tls_server_name"])
        if r["http_host"]:
            w["host"].add(r["http_host"])
        w["tags"].update(r["tags"])
    return out


def compare(capture, records):
    """Per application: conversations tshark names, how weir named the same ones; and the
    disagreements, each with its explanation or None when unexplained."""
    t = tshark_conversations(capture)
    w = weir_conversations(records)
    stats = collections.defaultdict(collections.Counter)
    problems = []
    name = os.path.basename(capture)
    for k, c in t.items():
        got = w.get(k, {"apps": set(), "sni": set(), "host": set()})
        for app in c.apps:
            stats[app]["tshark"] += 1
            if app in got["apps"]:
                stats[app]["weir_same"] += 1
                continue
            # Explanations for a conversation weir cannot name from its first bytes.
            if not c.starts_with_syn:
                why = "capture starts inside the conversation (no SYN): its first bytes were not seen"
            elif not c.first_payload:
                why = "no payload"
            elif not any(starts_like(app, b) for b in c.first_bytes.values()):
                why = f"neither side's first bytes start {app} (tshark names it by port or later bytes)"
            elif app == "DNS" and not {53, 5353, 5355} & {k[2], k[4]}:
                why = "DNS on a port the shipped DNS rules are not scoped to (53, 5353, 5355)"
            elif app == "TLS" and "QUIC" in c.apps and "QUIC" in got["apps"]:
                why = "TLS inside QUIC: weir names the QUIC it sees"
            elif got["apps"]:
                why = None if not (got["apps"] & set(TSHARK_APP.values())) else \
                    f"weir names it {sorted(got['apps'])} from its first bytes (tshark also sees {app} later in it)"
                if len(c.apps) > 1 and got["apps"] & c.apps:
                    why = f"tshark sees {sorted(c.apps)}; weir names the one its first bytes show"
            else:
                why = None
            stats[app]["explained" if why else "unexplained"] += 1
            problems.append((name, k, f"tshark {app}, weir {sorted(got['apps']) or 'nothing'}", why))
        if c.sni is not None:
            stats["TLS server name"]["tshark"] += 1
            if c.sni in got["sni"]:
                stats["TLS server name"]["weir_same"] += 1
            else:
                why = None
                if not c.starts_with_syn:
                    why = "capture starts inside the conversation"
                elif "QUIC" in c.apps:
                    why = "QUIC: the ClientHello travels in encrypted Initial packets, which weir does not decrypt"
                elif c.sni_frame != c.first_payload.get(0):
                    why = "the ClientHello is not all in the client's first payload segment (tshark reassembled it)"
                stats["TLS server name"]["explained" if why else "unexplained"] += 1
                problems.append((name, k, f"SNI tshark {c.sni!r}, weir {sorted(got['sni'])}", why))
        if c.host is not None:
            stats["HTTP Host"]["tshark"] += 1
            if c.host in got["host"]:
                stats["HTTP Host"]["weir_same"] += 1
            else:
                why = None
                if not c.starts_with_syn:
                    why = "capture starts inside the conversation"
                elif c.host_frame != c.first_payload.get(0):
                    why = ("the first request's Host is not in the client's first payload segment "
                           "(a later request, or a request tshark reassembled)")
                stats["HTTP Host"]["explained" if why else "unexplained"] += 1
                problems.append((name, k, f"Host tshark {c.host!r}, weir {sorted(got['host'])}", why))
    return stats, problems


def replay_inspected(capture, workdir, rules=APPS, extra_config=None):
    cfg = {"inspect": {"rules": rules}}
    if extra_config:
        cfg.update(extra_config)
    return harness.replay_jsonl(capture, "outer", workdir, extra_config=cfg, extra_args=["--management", "none"])


def shared_selection(limit=None):
    """Captures of the shared corpus that carry what the rules name, without tunnels or damage."""
    pc = harness.pcaps_dir()
    rows = list(csv.DictReader(open(os.path.join(pc, "MANIFEST.tsv")), delimiter="\t"))
    want = {"tls", "http", "ssh", "quic", "smtp", "ftp", "sip", "smb", "dns", "ntp", "snmp", "dhcp"}
    avoid = {"gre", "vxlan", "geneve", "gtp", "erspan", "mpls", "malformed", "snaplen-truncated", "expert-error",
             "ipv4-frag", "ipv6-frag", "fragments"}
    out = []
    for r in rows:
        tags = {t.strip() for t in r["exercises"].split(";")[0].split(",")}
        if tags & want and not tags & avoid and int(r["packets"]) <= 20000 and \
                r["linktype"] in ("ether", "rawip4", "rawip", "null", "linux-sll"):
            out.append(os.path.join(pc, r["file"]))
    return out[:limit] if limit else out


def main_survey():
    """Every suitable capture of the corpus: the agreement table and every disagreement."""
    import tempfile
    total = collections.defaultdict(collections.Counter)
    unexplained = []
    for cap in shared_selection():
        with tempfile.TemporaryDirectory() as d:
            p, s, recs = replay_inspected(cap, d)
            if p.returncode != 0:
                print("FAILED", cap, p.stderr[-500:])
                continue
            st, probs = compare(cap, recs)
            for a, c in st.items():
                total[a].update(c)
            unexplained += [x for x in probs if x[3] is None]
    for a in sorted(total):
        print(f"{a:18} {dict(total[a])}")
    for x in unexplained:
        print("UNEXPLAINED", x)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "survey":
    main_survey()
    sys.exit(0)


# ---- captures made here -------------------------------------------------------------------

def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(src, dst, sport, dport, flags, seq, ack, payload=b""):
    """An Ethernet/IPv4/TCP frame with correct checksums."""
    sa, da = bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = sa + da + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, sa, da)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + tcp


def write_pcap(path, frames, t0=1_700_000_000):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", t0 + i // 1000, (i % 1000) * 1000, len(fr), len(fr)))
            f.write(fr)


def conversation(client_port, segments, server_port=80, client="10.9.0.1", server="10.9.0.2"):
    """A TCP conversation: handshake, the client's segments as given (payload, sequence offset)
    in that order, FIN both ways."""
    c, s = 1000, 5000
    fr = [tcp_frame(client, server, client_port, server_port, 0x02, c, 0),
          tcp_frame(server, client, server_port, client_port, 0x12, s, c + 1),
          tcp_frame(client, server, client_port, server_port, 0x10, c + 1, s + 1)]
    end = 0
    for data, off in segments:
        fr.append(tcp_frame(client, server, client_port, server_port, 0x18, c + 1 + off, s + 1, data))
        end = max(end, off + len(data))
    fr.append(tcp_frame(client, server, client_port, server_port, 0x11, c + 1 + end, s + 1))
    fr.append(tcp_frame(server, client, server_port, client_port, 0x11, s + 1, c + 2 + end))
    fr.append(tcp_frame(client, server, client_port, server_port, 0x10, c + 2 + end, s + 2))
    return fr


class Inspect(unittest.TestCase):
    def setUp(self):
        self.tmp = harness.scratch(self, "weir-inspect-")

    def rules_file(self, rules, name="rules.json"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump({"rules": rules}, f)
        return path

    def by_port(self, records):
        out = {}
        for r in records:
            out.setdefault(r["sport"] if r["dport"] == 80 else r["dport"], r)
        return out

    def test_split_segments_depth_order_and_retransmission(self):
        """A pattern split across two segments is found; one that ends past the depth is not;
        bytes are scanned in arrival order: a retransmission is scanned again, and segments that
        arrive out of order hide a pattern they split (no reassembly)."""
        head, tail = b"GET / HTTP/1.1\r\nX-Pad: EXPLO", b"IT-STRING\r\n\r\n"
        frames = []
        frames += conversation(40001, [(head, 0), (tail, len(head))])                    # split: found
        frames += conversation(40002, [(b"x" * 95 + b"EXPLOIT-STRING", 0)])              # ends past 100: not
        frames += conversation(40003, [(b"y" * 20, 0), (b"EXPLOIT-STRING", 20)])         # in depth: found
        frames += conversation(40004, [(tail, len(head)), (head, 0)])                    # out of order: not
        frames += conversation(40005, [(head, 0), (head, 0), (tail, len(head))])         # retransmitted: found
        frames += conversation(40006, [(b"z" * 110, 0), (b"EXPLOIT-STRING", 110)])       # past depth: not
        cap = os.path.join(self.tmp, "split.pcap")
        write_pcap(cap, frames)
        rules = self.rules_file([{"id": 7, "name": "the string", "pattern": "EXPLOIT-STRING", "tag": "exploit"}])
        p, s, recs = replay_inspected(cap, self.tmp, rules, {"inspect": {"rules": rules, "depth": 100}})
        self.assertEqual(p.returncode, 0, p.stderr)
        flows = self.by_port(recs)
        tagged = {port for port, r in flows.items() if r["tags"] == ["exploit"]}
        self.assertEqual(tagged, {40001, 40003, 40005}, json.dumps(flows, indent=1))
        for port in (40001, 40003, 40005):
            self.assertEqual(flows[port]["rule_ids"], [7])

    def test_bad_rules_exit_2_naming_rule_and_reason(self):
        bad = self.rules_file([{"id": 1, "pattern": "fine", "tag": "a"},
                               {"id": 42, "name": "unbalanced", "pattern": "(abc", "tag": "b"}])
        cap = harness.capture("zeek__http_get.pcap")
        p = harness.run_weir(["-r", cap, "--rules", bad, "--management", "none"], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("rule 42 (unbalanced)", p.stderr)
        self.assertIn("parenthes", p.stderr.lower())
        odd = self.rules_file([{"id": 5, "pattern": "x"}, {"id": 6, "pattern": "y", "tag": "t", "flags": ["nope"]}],
                              "odd.json")
        p = harness.run_weir(["-r", cap, "--rules", odd, "--check"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("rules[0] (id 5): does nothing", p.stderr)
        self.assertIn("rules[1] (id 6).flags: unknown flag \"nope\"", p.stderr)
        p = harness.run_weir(["-r", cap, "--rules", os.path.join(self.tmp, "missing.json"), "--check"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.json: cannot open", p.stderr)

    def test_reload_bad_rules_keep_the_old_and_good_ones_swap(self):
        cap = harness.capture("zeek__http_get.pcap")
        rules = self.rules_file([{"id": 1, "name": "request", "pattern": "^GET ", "app": "HTTP"}])
        w = HeldReplay(cap, ["--rules", rules])
        try:
            w.wait_finished()
            code, body = http(w.base + "/flows/top?by=bytes")
            self.assertEqual(code, 200, body)
            self.assertIn("HTTP", {f["application"] for f in json.loads(body)["flows"]}, body)
            with open(rules, "w") as f:
                json.dump({"rules": [{"id": 7, "name": "broken", "pattern": "a{2,1}", "tag": "t"}]}, f)
            code, body = http(w.base + "/reload", data=b"")
            res = json.loads(body)
            self.assertFalse(res["ok"], body)
            self.assertTrue(any("rule 7 (broken)" in e for e in res["errors"]), body)
            st = json.loads(http(w.base + "/status")[1])["inspect"]
            self.assertEqual(st["rules_loaded"], 1)
            self.assertEqual([r["id"] for r in st["rules"]], [1])
            with open(rules, "w") as f:
                json.dump({"rules": [{"id": 2, "name": "response", "pattern": "^HTTP/1", "app": "HTTP"},
                                     {"id": 3, "name": "html", "pattern": "<html", "tag": "html",
                                      "flags": ["caseless"]}]}, f)
            code, body = http(w.base + "/reload", data=b"")
            res = json.loads(body)
            self.assertTrue(res["ok"], body)
            self.assertIn("inspect.rules", res["changed"])
            st = json.loads(http(w.base + "/status")[1])["inspect"]
            self.assertEqual(st["rules_loaded"], 2)
            code, metrics = http(w.base + "/metrics")
            self.assertIn('weir_rule_matches_total{rule="1",name="request",tag="",app="HTTP"} 1', metrics)
            self.assertIn('weir_rules_loaded 2', metrics)
        finally:
            rc, out, err = w.stop()
        self.assertEqual(rc, 0, err)

    def test_ipfix_fields_decode_in_tshark_and_nfdump(self):
        cap = harness.capture("zeek__http_get.pcap")
        with harness.Collectors() as col:
            p, s = harness.replay(cap, col, extra=["--rules", APPS, "--management", "none"])
            col.finish()
            out = subprocess.run(["tshark", "-n", "-r", col.lo_pcap, "-d", f"udp.port=={col.port},cflow", "-V"],
                                 capture_output=True, text=True, check=True).stdout
            nf = col.nfdump_records()
            self.assertEqual(col.nfdump_sequence_failures(), 0)
        self.assertEqual(sorted((r.packets, r.octets) for r in nf), [(7, 512), (7, 5379)])
        self.assertNotIn("Malformed", out)
        self.assertEqual(out.count("ApplicationName: HTTP"), 2, out[-3000:])
        self.assertEqual(out.count("HTTP Request Host: bro.org"), 2, out[-3000:])

    def test_active_timeout_keeps_the_application(self):
        """A conversation the active timeout splits into several records names its application in
        every one of them, not only in the first."""
        cap = harness.capture("zeek__ssh_ssh.pcap")
        p, s, recs = replay_inspected(cap, self.tmp, extra_config={"timeouts": {"active_s": 2}})
        self.assertEqual(p.returncode, 0, p.stderr)
        apps = collections.defaultdict(list)
        for r in recs:
            apps[key_of(r["proto"], r["src"], r["sport"], r["dst"], r["dport"])].append(r["application"])
        split = {k: v for k, v in apps.items() if len(v) > 2 and "SSH" in v}
        self.assertGreater(len(split), 5)
        for k, v in split.items():
            self.assertEqual(set(v), {"SSH"}, k)

    def test_applications_agree_with_tshark(self):
        """The shipped rules on real captures, against tshark's dissection of the same flows; every
        disagreement has its reason. WEIR_INSPECT_ALL=1 runs every suitable capture of the corpus."""
        if os.environ.get("WEIR_INSPECT_ALL"):
            caps = shared_selection()
        else:
            caps = [harness.capture(c) for c in harness.present(AGREEMENT_CAPTURES)]
        total = collections.defaultdict(collections.Counter)
        unexplained = []

        def check(cap):  # two at a time: a replay and tshark's dissection each take a core
            d = harness.scratch(self, "weir-inspect-cap-")
            p, _, recs = replay_inspected(cap, d)
            return cap, p, (compare(cap, recs) if p.returncode == 0 else ({}, []))
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(check, caps))
        for cap, p, (st, probs) in results:
            self.assertEqual(p.returncode, 0, cap + p.stderr)
            for a, c in st.items():
                total[a].update(c)
            unexplained += [x for x in probs if x[3] is None]
        print("\napplication/name: tshark, weir the same, explained, unexplained", file=sys.stderr)
        for a in sorted(total):
            c = total[a]
            print(f"  {a:16} {c['tshark']:5} {c['weir_same']:5} {c['explained']:5} {c['unexplained']:5}",
                  file=sys.stderr)
        self.assertEqual(unexplained, [])
        for app in ("HTTP", "TLS", "SSH", "DNS", "HTTP Host"):
            self.assertGreater(total[app]["weir_same"], 0, app)


class Capture(unittest.TestCase):
    """Selective capture: the packets of the flows a capture rule matched, from the matching packet
    on, up to the per-flow limit, in pcapng files of mode 0600 that tshark reads, with the flow and
    the rule in each packet's comment; rotation and the disk budget hold."""
    CAP = "nfstream__1kxun.pcap"

    def setUp(self):
        self.tmp = harness.scratch(self, "weir-capture-")
        self.rules = os.path.join(self.tmp, "rules.json")
        with open(self.rules, "w") as f:
            json.dump({"rules": [{"id": 50, "name": "http get", "pattern": "^GET ", "capture": True, "tag": "get"}]}, f)

    def run_capture(self, capture_cfg):
        cap = harness.capture(self.CAP)
        p, s, recs = harness.replay_jsonl(cap, "outer", self.tmp,
                                          extra_config={"inspect": {"rules": self.rules}, "capture": capture_cfg},
                                          extra_args=["--management", "none"])
        self.assertEqual(p.returncode, 0, p.stderr)
        return s, recs

    def expected(self, limit):
        """tshark on the original: per conversation, the frames from the first payload segment that
        starts with "GET " on, the first `limit` of them."""
        cap = harness.capture(self.CAP)
        out = subprocess.run(["tshark", "-n", "-r", cap, "-Y", "tcp", "-T", "fields", "-E", "separator=\t",
                              "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst",
                              "-e", "tcp.dstport", "-e", "tcp.payload"], capture_output=True, text=True,
                             check=True).stdout
        first_payload, chosen = {}, collections.defaultdict(list)
        for line in out.splitlines():
            t, src, sp, dst, dp, pay = (line.split("\t") + [""] * 6)[:6]
            if "," in src:
                continue
            k = key_of(6, src, int(sp), dst, int(dp))
            d = (src, int(sp))
            if k in chosen:
                if len(chosen[k]) < limit:
                    chosen[k].append(round(float(t), 6))
                continue
            if pay and (k, d) not in first_payload:
                first_payload[(k, d)] = True
                if bytes.fromhex(pay.replace(":", "")).startswith(b"GET "):
                    chosen[k].append(round(float(t), 6))
        return {k: v for k, v in chosen.items() if v}

    def read_pcapng(self, folder):
        got = collections.defaultdict(list)
        comments = {}
        files = sorted(f for f in os.listdir(folder) if f.endswith(".pcapng"))
        for f in files:
            path = os.path.join(folder, f)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, f)
            out = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-e",
                                  "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e",
                                  "tcp.dstport", "-e", "frame.comment"], capture_output=True, text=True,
                                 check=True).stdout
            for line in out.splitlines():
                t, src, sp, dst, dp, comment = line.split("\t")
                k = key_of(6, src, int(sp), dst, int(dp))
                got[k].append(round(float(t), 6))
                comments.setdefault(k, set()).add(comment)
        return files, got, comments

    def test_capture_holds_the_chosen_packets(self):
        folder = os.path.join(self.tmp, "pcap")
        s, recs = self.run_capture({"dir": folder, "packets_per_flow": 5})
        files, got, comments = self.read_pcapng(folder)
        want = self.expected(5)
        self.assertGreater(len(want), 5)
        self.assertEqual(dict(got), want)
        for k, cs in comments.items():
            self.assertEqual(len(cs), 1, cs)
            c = next(iter(cs))
            self.assertIn("rule 50 (http get) tag get", c)
            self.assertIn(f"{k[1]}:{k[2]}", c)
            self.assertIn(f"{k[3]}:{k[4]}", c)
        self.assertEqual(s["capture"]["packets_written"], sum(len(v) for v in want.values()))
        self.assertEqual(s["capture"]["packets_dropped"], 0)
        tagged = {key_of(6, r["src"], r["sport"], r["dst"], r["dport"]) for r in recs if 50 in r["rule_ids"]}
        self.assertEqual(tagged, set(want))

    def test_rotation_and_budget(self):
        folder = os.path.join(self.tmp, "small")
        s, recs = self.run_capture({"dir": folder, "packets_per_flow": 50, "file_mb": 0.01, "budget_mb": 0.04})
        c = s["capture"]
        files = [os.path.join(folder, f) for f in os.listdir(folder)]
        self.assertLessEqual(sum(os.path.getsize(f) for f in files), 0.04 * 1048576)
        self.assertGreater(c["files"], len(files))
        self.assertEqual(c["files_deleted"], c["files"] - len(files))
        self.assertEqual(c["packets_written"] + c["budget_drops"], c["packets_chosen"])
        self.assertEqual(c["write_errors"], 0)
        for f in files:  # every file that is left reads alone
            p = subprocess.run(["tshark", "-n", "-r", f], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_capture_rule_without_folder_is_an_error(self):
        cap = harness.capture(self.CAP)
        p = harness.run_weir(["-r", cap, "--rules", self.rules, "--check"], check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("rule 50 (http get) asks for capture: set capture.dir", p.stderr)


# A cross-section of the corpus: HTTP, TLS with SNI, SSH, DNS, QUIC, SMB, FTP, SMTP, NTP, SNMP,
# DHCP, SIP, SOCKS, RDP, mDNS/SSDP (WEIR_INSPECT_ALL=1 for every suitable capture).
AGREEMENT_CAPTURES = [
    "zeek__http_get.pcap", "zeek__http_post.pcap", "zeek__http-vlan-0.pcap", "zeek__http-qinq-0.pcap",
    "zeek__tls_chrome-34-google.pcap", "zeek__tls_client-certificate.pcap", "zeek__tls_certificate-with-sct.pcap",
    "zeek__tls_CVE-2015-3194.pcap", "zeek__socks-with-ssl.pcap", "zeek__socks.pcap", "ndpi__socks.pcap",
    "zeek__ssh_ssh.pcap", "zeek__ssh_single-conn.pcap", "zeek__ssh_reverse-ssh.pcap", "zeek__http_get-to-ssh-server.pcap",
    "zeek__dns-edns-cookie.pcap", "zeek__dns-two-responses.pcap", "zeek__dns_dynamic-update.pcap",
    "zeek__quic_chromium-115.0.5790.110-api-cirrus-com.pcap", "zeek__quic_quicv2-echo-443.pcap",
    "ndpi__quic_interop_V.pcapng", "zeek__smb_smb2.pcap", "zeek__smb_cifs_negotiate_lanman.pcap",
    "zeek__krb_smb_gssapi.pcap", "zeek__ftp_ipv4.pcap", "zeek__ftp_ftp-password-pass-command.pcap",
    "zeek__smtp-multi-addr.pcap", "zeek__smtp_rfc3030-bdat-example1.pcap", "zeek__ntp_NTP_sync.pcap",
    "tcpdump__ntp-mode7.pcap", "zeek__snmp_snmpv2_get_bulk.pcap", "zeek__dhcp_dhcp_inform.pcap",
    "suricata-verify__sip-compact-form_sip_compact_form.pcap", "zeek__rdp_rdpeudp-handshake-success.pcap",
    "ndpi__rdp2.pcap", "zeek__var-services-std-ports.pcap", "nfstream__1kxun.pcap", "nfstream__imaps.pcap",
    "nfstream__netbios.pcap", "ndpi__heuristic_tcp_ack_payload.pcap", "zeek__tcp_payload-synack.pcap",
]

if __name__ == "__main__":
    unittest.main(verbosity=2)
